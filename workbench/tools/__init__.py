"""Tools a generator can call (survey §5.2): the calculator and a code sandbox."""
from .calculator import calculate, calculator
from .sandbox import SandboxResult, run_python

__all__ = ["calculate", "calculator", "run_python", "SandboxResult"]
