"""The calculator tool (survey §5.2): exact arithmetic on the text of a call.

``calculator("12+7*3")`` returns ``"=33"``: the expression is parsed with Python's `ast` and only
numbers, parentheses and the operators ``+ - * / // % **`` are evaluated (never ``eval``), so a
model's call cannot run code.  Integers stay exact; ``/`` gives an exact fraction shown as an
integer when it is one, else as a decimal (``"=0.75"``).  Anything else is a ``ValueError``
naming ``call``, which `workbench.meta.tool_generate` hands back to the model as ``=error(...)``.
"""
from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_EXPONENT = 64          # 10**64 is plenty for a calculator; 9**9**9 would hang
MAX_LENGTH = 200
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")   # 1,200 -> 1200


def _value(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        a, b = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (b.denominator != 1 or abs(b) > MAX_EXPONENT):
            raise ValueError(f"call: exponent must be an integer of at most {MAX_EXPONENT}")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and b == 0:
            raise ValueError("call: division by zero")
        return _BINARY[type(node.op)](a, b)
    raise ValueError(f"call: only numbers, ( ) and + - * / // % ** are allowed, got "
                     f"{ast.unparse(node)!r}")


def calculate(call: str):
    """The exact value of an arithmetic expression: an int, or a `Fraction` when not whole."""
    if not isinstance(call, str) or not call.strip():
        raise ValueError(f"call: must be a non-empty expression, got {call!r}")
    if len(call) > MAX_LENGTH:
        raise ValueError(f"call: longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(_THOUSANDS.sub("", call.strip()), mode="eval")
    except SyntaxError:
        raise ValueError(f"call: not an arithmetic expression: {call!r}") from None
    value = _value(tree.body)
    return int(value) if value.denominator == 1 else value


def calculator(call: str) -> str:
    """The calculator tool: ``"=<value>"`` of the expression inside ``[CALC]...[/CALC]``."""
    value = calculate(call)
    if isinstance(value, int):
        return f"={value}"
    return f"={float(value):.10g}"
