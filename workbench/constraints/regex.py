"""A small regular-expression parser (survey §3.5.1, "RegEx-based parsers").

`parse(pattern)` turns a pattern into a syntax tree of four node kinds::

    ("set", ranges)          one character from a set of code-point ranges [(lo, hi), ...]
    ("cat", [nodes])         concatenation
    ("alt", [nodes])         alternation  a|b
    ("rep", node, m, n)      repetition   a{m,n}  (n None: unbounded; * is {0,}, + {1,}, ? {0,1})

Supported syntax: literals, escapes (``\\n \\t \\xHH \\uHHHH``, escaped metacharacters), the ASCII
classes ``\\d \\w \\s`` and their negations, character classes ``[a-z]``, ``[^...]``, ``.`` (any
character but newline), ``|``, ``* + ?`` (a trailing lazy ``?`` is accepted: it does not change
the language), ``{m}``, ``{m,}``, ``{m,n}`` and groups ``(...)``, ``(?:...)``.  The pattern always
matches the *whole* output, so anchors (``^ $ \\b``) are rejected, as is anything else outside
this list: a ``ValueError`` names the position.

Characters are Unicode code points; `utf8_sequences` splits a code-point range into byte-range
sequences, so the automaton built from the tree (`automata.py`) reads UTF-8 bytes, which is what
byte-level BPE tokens are made of.
"""
from __future__ import annotations

MAX_CHAR = 0x10FFFF
MAX_REPEAT = 1000
DIGIT = [(48, 57)]
WORD = [(48, 57), (65, 90), (95, 95), (97, 122)]
SPACE = [(9, 13), (32, 32)]
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "0": "\0"}


def normalize(ranges) -> list:
    """Sorted, merged code-point ranges."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def negate(ranges) -> list:
    """The complement of a set of ranges within [0, MAX_CHAR]."""
    out, start = [], 0
    for lo, hi in normalize(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CHAR:
        out.append((start, MAX_CHAR))
    return out


ANY_BUT_NEWLINE = negate([(10, 10)])
_CLASS_ESCAPES = {"d": DIGIT, "D": negate(DIGIT), "w": WORD, "W": negate(WORD), "s": SPACE,
                  "S": negate(SPACE)}


def literal(text: str):
    """The tree of a literal string."""
    return ("cat", [("set", [(ord(c), ord(c))]) for c in text])


class _Parser:
    def __init__(self, pattern: str):
        self.p, self.i = pattern, 0

    def error(self, msg, at=None):
        at = self.i if at is None else at
        return ValueError(f"invalid regex {self.p!r} at position {at}: {msg}")

    def peek(self):
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self):
        c = self.peek()
        self.i += 1
        return c

    def parse(self):
        node = self.alternation()
        if self.peek() is not None:
            raise self.error("unbalanced ')'" if self.peek() == ")" else "unexpected character")
        return node

    def alternation(self):
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.take()
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def concatenation(self):
        items = []
        while self.peek() not in (None, "|", ")"):
            items.append(self.repetition())
        return items[0] if len(items) == 1 else ("cat", items)

    def repetition(self):
        node = self.atom()
        quantified = lazy = False
        while self.peek() in ("*", "+", "?", "{"):
            start = self.i
            c = self.take()
            if quantified:
                if c == "?" and not lazy:     # lazy a*? matches the same strings as a*
                    lazy = True
                    continue
                raise self.error("multiple repeat", start)
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}.get(c) or self.braces(start)
            node, quantified = ("rep", node, lo, hi), True
        return node

    def braces(self, start):
        end = self.p.find("}", self.i)
        body = self.p[self.i:end] if end >= 0 else ""
        parts = body.split(",")
        if end < 0 or len(parts) > 2 or not parts[0].isdigit() or \
                (len(parts) == 2 and parts[1] and not parts[1].isdigit()):
            raise self.error("'{' must start a repetition {m}, {m,} or {m,n} (use \\{ for a "
                             "literal brace)", start)
        self.i = end + 1
        lo = int(parts[0])
        hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
        if hi is not None and hi < lo:
            raise self.error(f"repetition {{{body}}} has max < min", start)
        if max(lo, hi or 0) > MAX_REPEAT:
            raise self.error(f"repetition counts above {MAX_REPEAT} are not supported", start)
        return lo, hi

    def atom(self):
        start = self.i
        c = self.take()
        if c in ("*", "+", "?", "{"):
            hint = " (use \\{ for a literal brace)" if c == "{" else ""
            raise self.error(f"{c!r} has nothing to repeat{hint}", start)
        if c in ("^", "$"):
            raise self.error("anchors are not supported: the constraint always matches the "
                             "whole output", start)
        if c == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise self.error("only (...) and (?:...) groups are supported")
            node = self.alternation()
            if self.take() != ")":
                raise self.error("missing ')'", start)
            return node
        if c == "[":
            return ("set", self.char_class(start))
        if c == ".":
            return ("set", ANY_BUT_NEWLINE)
        if c == "\\":
            return ("set", self.escape(in_class=False))
        return ("set", [(ord(c), ord(c))])

    def escape(self, in_class: bool) -> list:
        start = self.i - 1
        c = self.take()
        if c is None:
            raise self.error("pattern ends with a backslash", start)
        if c in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[c]
        if c in _SIMPLE_ESCAPES:
            return [(ord(_SIMPLE_ESCAPES[c]),) * 2]
        if c in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.p[self.i:self.i + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"\\{c} needs {width} hex digits", start)
            self.i += width
            code = int(digits, 16)
            if code > MAX_CHAR:
                raise self.error("code point above U+10FFFF", start)
            return [(code, code)]
        if c == "b" and in_class:
            return [(8, 8)]
        if c.isalnum():
            what = "anchors" if c in "bBAzZ" else "this escape"
            raise self.error(f"\\{c}: {what} not supported", start)
        return [(ord(c), ord(c))]

    def char_class(self, start) -> list:
        negated = self.peek() == "^"
        if negated:
            self.take()
        ranges, first = [], True
        while True:
            c = self.take()
            if c is None:
                raise self.error("missing ']'", start)
            if c == "]" and not first:
                break
            first = False
            if c == "\\":
                item = self.escape(in_class=True)
            else:
                item = [(ord(c), ord(c))]
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                if len(item) != 1 or item[0][0] != item[0][1]:
                    raise self.error("a class escape cannot start a range")
                self.take()
                c2 = self.take()
                hi = self.escape(in_class=True) if c2 == "\\" else [(ord(c2), ord(c2))]
                if len(hi) != 1 or hi[0][0] != hi[0][1]:
                    raise self.error("a class escape cannot end a range")
                if hi[0][0] < item[0][0]:
                    raise self.error(f"bad character range {chr(item[0][0])}-{chr(hi[0][0])}")
                item = [(item[0][0], hi[0][0])]
            ranges.extend(item)
        return negate(ranges) if negated else normalize(ranges)


def parse(pattern: str):
    """The syntax tree of ``pattern`` (see the module docstring); ValueError if unsupported."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string, got {type(pattern).__name__}")
    return _Parser(pattern).parse()


def escape(text: str) -> str:
    """``text`` with every metacharacter escaped (the pattern that matches exactly ``text``)."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}-" else
                   ("\\n" if c == "\n" else c) for c in text)


# -- code points -> UTF-8 byte ranges ---------------------------------------------------------
def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8", "surrogatepass")


def utf8_sequences(lo: int, hi: int) -> list:
    """Split the code points [lo, hi] into sequences of byte ranges matching their UTF-8 bytes.

    Each sequence is a list of (byte_lo, byte_hi) pairs, one per byte; a string of bytes encodes
    a code point in [lo, hi] iff it matches one sequence.  Surrogates (never valid UTF-8) are
    dropped.  This is the classic split used by regex engines (e.g. Rust's ``Utf8Sequences``):
    cut the range where the encoded length changes, then where the continuation bytes would not
    cover their full 0x80-0xBF span.
    """
    out, stack = [], [(lo, hi)]
    while stack:
        lo, hi = stack.pop()
        if lo > hi:
            continue
        if lo <= 0xDFFF and hi >= 0xD800:           # drop surrogates
            stack += [(0xE000, hi), (lo, 0xD7FF)]
            continue
        split = next((b for b in (0x7F, 0x7FF, 0xFFFF) if lo <= b < hi), None)
        if split is not None:                       # different encoded lengths
            stack += [(split + 1, hi), (lo, split)]
            continue
        if hi <= 0x7F:
            out.append([(lo, hi)])
            continue
        for k in (1, 2, 3):
            m = (1 << (6 * k)) - 1
            if lo & ~m != hi & ~m:
                if lo & m:
                    stack += [((lo | m) + 1, hi), (lo, lo | m)]
                    break
                if hi & m != m:
                    stack += [(hi & ~m, hi), (lo, (hi & ~m) - 1)]
                    break
        else:
            out.append(list(zip(_encode(lo), _encode(hi))))
    return sorted(out)
