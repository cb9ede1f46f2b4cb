"""Regex parser, UTF-8 byte ranges and automata, checked against Python's `re`."""
import re

import pytest
from hypothesis import given, settings, strategies as st

from workbench.constraints.automata import compile_regex
from workbench.constraints.regex import escape, parse, utf8_sequences

ALPHABET = "abc01 \n.é日-"
PATTERNS = [r"(ab|cd)[0-9]{2}", r"a*b+", r"[^a-c]x", r".{0,3}z", r"", r"é|日本", r"(a|)b?",
            r"\d+\s\w*", r"[\-a]+", r"x{2,}", r"(?:ab)*?c", r"[^\n]*", r"a\.b", r"\x41\u00e9"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_dfa_agrees_with_python_re(pattern):
    dfa = compile_regex(pattern)
    words = [""] + [a + b + c for a in ALPHABET for b in "ab0é\n" for c in ["", "b", "z", "1"]]
    words += ["ab12", "cd00", "aab", "dx", "éx", "abcz", "日本", "12 ab_", "xxx", "ababc", "Aé"]
    for w in words:
        assert dfa.matches(w) == bool(re.fullmatch(pattern, w, re.ASCII)), (pattern, w)


# random regexes from a small grammar, random strings: our DFA == re.fullmatch
_atoms = st.sampled_from(["a", "b", "é", ".", "[ab]", "[^a]", r"\d", "(a|bb)", "(é|)"])
_regex = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda p: f"({p[0]}|{p[1]})"),
        st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "{0,}"]))
        .map(lambda p: f"(?:{p[0]}){p[1]}")),
    max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(_regex, st.lists(st.text(alphabet="abé1\n", max_size=6), min_size=5, max_size=5))
def test_random_regexes_match_python(pattern, words):
    dfa = compile_regex(pattern)
    for w in words:
        assert dfa.matches(w) == bool(re.fullmatch(pattern, w, re.ASCII)), (pattern, w)


@settings(max_examples=60, deadline=None)
@given(_regex)
def test_minimisation_keeps_the_language_and_shrinks(pattern):
    small, big = compile_regex(pattern), compile_regex(pattern, minimal=False)
    assert small.n_states <= big.n_states
    for w in ["", "a", "ab", "bb", "é", "1", "aé1", "bba", "\n", "aaaa"]:
        assert small.matches(w) == big.matches(w)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0x10FFFF), st.integers(0, 0x3000), st.integers(0, 0x10FFFF))
def test_utf8_sequences_cover_exactly_the_range(lo, width, probe):
    hi = min(lo + width, 0x10FFFF)
    seqs = utf8_sequences(lo, hi)

    def covered(cp):
        if 0xD800 <= cp <= 0xDFFF:
            return False
        b = chr(cp).encode("utf-8")
        return sum(len(s) == len(b) and all(x <= c <= y for c, (x, y) in zip(b, s))
                   for s in seqs)
    for cp in {lo, hi, probe, (lo + hi) // 2, max(lo - 1, 0), min(hi + 1, 0x10FFFF)}:
        want = lo <= cp <= hi and not 0xD800 <= cp <= 0xDFFF
        assert covered(cp) == int(want), (lo, hi, cp)


def test_parse_tree_shapes():
    assert parse("a") == ("set", [(97, 97)])
    assert parse("a|b")[0] == "alt"
    assert parse("a{2,5}") == ("rep", ("set", [(97, 97)]), 2, 5)
    assert parse("a*?") == ("rep", ("set", [(97, 97)]), 0, None)
    assert parse("[^\\x00-\\x7f]") == ("set", [(128, 0x10FFFF)])


def test_escape_round_trips():
    text = 'a.b*c{1}[x] (y)|z\\ "q"\n-'
    assert compile_regex(escape(text)).matches(text)
    assert re.fullmatch(escape(text), text)


def test_minimal_dfa_sizes():
    assert compile_regex("(ab|cd)[0-9]{2}").n_states == 6
    assert compile_regex("a*b+").n_states == 2
    assert compile_regex("(a|b)*abb").n_states == 4        # the dragon-book example


@pytest.mark.parametrize("bad", ["(ab", "ab)", "a**", "*a", "^a", "a$", "a{3,1}", "[z-a]",
                                 r"\q", "[abc", "a{", "(?P<x>a)", "\\", r"\bword", "x{2000}"])
def test_invalid_patterns_raise_value_error(bad):
    with pytest.raises(ValueError, match="invalid regex|too large"):
        compile_regex(bad)


def test_empty_language_raises():
    with pytest.raises(ValueError, match="matches no string"):
        compile_regex(r"[^\x00-\U0010FFFF]")
    with pytest.raises(TypeError):
        compile_regex(3)
