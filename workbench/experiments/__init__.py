"""Experiments built from the algorithms: the chains a chapter compares, evaluation loops.

Nothing here is an algorithm of the survey; these are the measured set-ups a chapter and its
sweep script share, so the notebook and ``scripts/`` never hold two copies of one experiment.
"""
from . import calculator
from .chains import chain_runs, evaluate

__all__ = ["calculator", "chain_runs", "evaluate"]
