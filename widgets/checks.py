"""Check cells of the chapters' exercises: a failed check says what is wrong.

A check cell is tagged ``check`` and wraps its tests in ``with checks.exercise(n):``::

    with checks.exercise(1):
        checks.answered(p_cat=p_cat)
        checks.expect(abs(p_cat - truth) < 1e-12, f"p_cat = {p_cat} is not p*(y): ...")

Inside the block, a blank answer (the ``...`` placeholder a student notebook starts with), a
name that is not defined (the exercise cell was not run) and a function that still raises
``NotImplementedError`` (its body not written yet) all fail with a message saying so, as
does an answer of the wrong kind (any other error while checking it); a
failed ``expect`` fails with its own message, which names the answer, shows the student's
value and says what to reconsider without giving the answer away.  Every failure is an
``ExerciseFailed`` (an ``AssertionError``); a passing block prints ``Exercise n: right.``.
Nothing here knows the workbench: checks are plain Python the notebook reader can follow.
"""
from __future__ import annotations

import math

__all__ = ["ExerciseFailed", "exercise", "answered", "expect", "close"]


class ExerciseFailed(AssertionError):
    """A check of an exercise failed; the message says what is wrong."""


class exercise:  # noqa: N801 - read as a verb in the check cells: `with checks.exercise(1):`
    """Run the checks of exercise ``number`` (``with checks.exercise(n): ...``); on success
    print ``Exercise n: right.``, on failure raise ``ExerciseFailed`` with a message that says
    what is wrong.  (A class, not a generator, so a failure's traceback is one frame here.)"""

    def __init__(self, number):
        self.label = f"Exercise {number}"

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        __tracebackhide__ = True  # noqa: F841 - IPython's marker for frames it may hide
        label = self.label
        if kind is None:
            print(f"{label}: right.")
            return False
        if issubclass(kind, ExerciseFailed):
            raise ExerciseFailed(f"{label}: {error}") from None
        if issubclass(kind, NotImplementedError):
            raise ExerciseFailed(
                f"{label}: a function of this exercise still raises NotImplementedError: "
                "replace `raise NotImplementedError()` by its body in the exercise cell above, "
                "run that cell, then this one.") from None
        if issubclass(kind, NameError):
            raise ExerciseFailed(
                f"{label}: {error}. Run the exercise cell above (and the chapter's cells before "
                "it) first: it defines the answer this cell checks.") from None
        if issubclass(kind, Exception):  # the answer is not the kind of value the check needs
            raise ExerciseFailed(
                f"{label}: checking your answer raised {kind.__name__}: {error}. Is each "
                "answer the kind of value the exercise asks for (a number, a text, a "
                "function...)?") from error
        return False   # KeyboardInterrupt and the like pass through


def answered(**answers) -> None:
    """Fail when an answer is still the ``...`` placeholder of the student notebook."""
    __tracebackhide__ = True
    blank = [name for name, value in answers.items() if value is Ellipsis]
    if blank:
        names = ", ".join(f"`{n}`" for n in blank)
        raise ExerciseFailed(
            f"{names} {'is' if len(blank) == 1 else 'are'} still `...` (blank): replace the "
            "placeholder in the exercise cell above by code that computes "
            f"{'it' if len(blank) == 1 else 'them'}, and run that cell.")


def expect(ok, message: str) -> None:
    """Fail with ``message`` unless ``ok``."""
    __tracebackhide__ = True
    if not ok:
        raise ExerciseFailed(message)


def close(name: str, value, want: float, hint: str, tol: float = 1e-9,
          abs_tol: float | None = None) -> None:
    """``value`` (the answer called ``name``) is a number within ``tol`` (relative, or
    ``abs_tol``, default ``tol``, near 0) of ``want``; else fail with the value and ``hint``
    (not with ``want``).  Pass ``abs_tol=0`` when ``want`` itself can be tiny (a p-value)."""
    __tracebackhide__ = True
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ExerciseFailed(f"`{name}` should be a number, got {type(value).__name__} "
                             f"{value!r}.") from None
    if not math.isclose(x, float(want), rel_tol=tol, abs_tol=tol if abs_tol is None else abs_tol):
        raise ExerciseFailed(f"`{name}` = {x:.6g} is not right: {hint}")
