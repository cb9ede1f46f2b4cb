"""Prompt plumbing shared by every task: stop strings, cutting a reply, reading an answer.

A plain causal LM asked few-shot goes on after its answer with a question of its own, so its
reply is cut at the first stop string (`STOP`, `cut`).  The default answer reader
(`extract_answer`) reads the integer after the last ``A:``, else after a final "answer is":
the format of TinyWorld's arithmetic and of few-shot prompts built in that format.  Other
tasks bring their own readers (`workbench.tasks`: GSM8K's ``#### 1,200``, MATH's ``\\boxed{}``,
code); the task formats themselves live with their tasks (TinyWorld's in
`workbench.tinyworld.formats`).  This module knows no task: it must not import
`workbench.tinyworld`.
"""
from __future__ import annotations

import re

STOP = ("\n\n", "\nQ:", "\nJSON:")
# an integer, with thousands commas or without; one that goes on as a decimal or with digits
# after a comma ("A: 3.5", "A: 1,20") is no integer answer and is not read (never "3" or "1")
INTEGER = r"(-?(?:\d{1,3}(?:,\d{3})+|\d+))(?![.,]?\d)"
_MARKED = re.compile(r"A: " + INTEGER)
# "the answer is 5 + 3 = 8." or "... is 1/3." states no integer answer at 5 or 1: not read
_LOOSE = re.compile(r"answer is:?\s*\**\s*" + INTEGER + r"(?!\s*(?:[-+/=^×÷]|\*(?!\*)|\d))",
                    re.IGNORECASE)


def fill(template: str, **values) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` in one pass: the values
    may hold braces (programs do), and a ``{name}`` with no value is left as it is."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), template)


def cut(text: str, stop) -> str:
    """``text`` up to the first of the ``stop`` strings."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[:min(cuts)] if cuts else text


def extract_answer(text: str):
    """The integer after the last ``A:``, else after "answer is"; None when neither states an
    integer (``1,200`` reads 1200; ``3.5`` reads None, never 3).  Other tasks' formats
    (``#### 18``, ``\\boxed{}``, decimals, units) are read by their `workbench.tasks` reader:
    pass ``answer_fn=task.extract``."""
    for pattern in (_MARKED, _LOOSE):
        found = pattern.findall(text)
        if found:
            return int(found[-1].replace(",", ""))
    return None


def first_json_object(text: str):
    """The first balanced ``{...}`` of ``text`` (strings respected), or ``None``."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_str, esc = 0, False, False
    for i, ch in enumerate(text[start:], start):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return None
