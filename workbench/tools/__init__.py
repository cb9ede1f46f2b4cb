"""Tools a generator can call (survey §5.2): the calculator and a code sandbox."""
from ..tinyworld.arithmetic import calculator
from .sandbox import SandboxResult, run_python

__all__ = ["calculator", "run_python", "SandboxResult"]
