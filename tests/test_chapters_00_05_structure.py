"""Chapters 00-05 as an instructor assigns them (issue 19): each states prerequisites and
student time, ends with key takeaways and further reading, checks its quantitative claims in
`claim` cells (guarded where they are about TinyWorld's own models), shows the package's source
beside the equations it typesets ("look inside"), keeps the review's corrections, and chapter
00's table of problem sets agrees with `workbench.tinyworld.tasks`.  Source-level checks only
(fast); running the chapters is nbval's job."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from conftest import load_script
from workbench.tinyworld.tasks import PROBLEM_SETS, problem_set

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ["00_welcome", "01_preliminaries", "02_map_decoding", "03_sampling_and_adapters",
            "04_controlled_generation", "05_constrained_decoding"]
# the claim cells each chapter has now: a claim dropped without a reason fails here
MIN_CLAIMS = {"00": 4, "01": 4, "02": 7, "03": 5, "04": 5, "05": 9}


def cells(chapter):
    src = ROOT / "notebooks" / "src" / f"{chapter}.py"
    return load_script("build_notebooks").parse(src.read_text(), chapter)


def tags(cell):
    return cell.metadata.get("tags", [])


def markdown(chapter):
    return "\n".join(c.source for c in cells(chapter) if c.cell_type == "markdown")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_header_states_prerequisites_and_student_time(chapter):
    head = cells(chapter)[0]
    assert head.cell_type == "markdown"
    assert "**Prerequisites:**" in head.source and "**Student time:**" in head.source
    assert re.search(r"\*\*Student time:\*\* (about )?\d+(–\d+)? minutes", head.source)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_ends_with_key_takeaways_and_further_reading(chapter):
    last = cells(chapter)[-1]
    assert last.cell_type == "markdown"
    assert last.source.index("## Key takeaways") < last.source.index("## Further reading")
    reading = last.source.split("## Further reading")[1]
    assert len(re.findall(r"\((?:19|20)\d\d\)", reading)) >= 2      # papers with their years
    assert "Welleck" in reading and "(2024)" in reading and "§" in reading   # the survey


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_claims_are_checked_in_tagged_cells_that_can_fail(chapter):
    claims = [c for c in cells(chapter) if "claim" in tags(c)]
    assert len(claims) >= MIN_CLAIMS[chapter[:2]], len(claims)
    for c in claims:
        assert c.cell_type == "code" and "assert" in c.source, c.source[:80]
        assert "assert True" not in c.source


@pytest.mark.parametrize("chapter", CHAPTERS[1:])
def test_model_specific_claims_are_guarded(chapter):
    """Chapters 01-05 take MODEL: a learner's own model must not trip TinyWorld's numbers."""
    src = "\n".join(c.source for c in cells(chapter) if c.cell_type == "code")
    assert 'TARGET = MODEL == "tinyworld"' in src
    assert any("if TARGET" in c.source for c in cells(chapter) if "claim" in tags(c))


@pytest.mark.parametrize("chapter", CHAPTERS[1:])
def test_look_inside_cells_sit_beside_the_maths(chapter):
    cs = cells(chapter)
    looks = [i for i, c in enumerate(cs) if c.cell_type == "code" and "show_source(" in c.source]
    assert looks, "no look-inside cell"
    for i in looks:      # the markdown just before says what to read in it, or typesets it
        before = next(c for c in reversed(cs[:i]) if c.cell_type == "markdown")
        assert "Look inside" in before.source or "$$" in before.source, before.source[:120]
    assert markdown(chapter).count("$$") >= 2


def test_chapter_05_typesets_its_equations_and_has_a_45_minute_plan():
    md = markdown("05_constrained_decoding")
    assert md.count("$$") >= 12                          # six display equations at least
    for symbol in (r"\mathcal{A}(\sigma_t)", r"Z_t(y_{<t})", r"q_{\text{mask}}",
                   r"\sqsubseteq", r"L(G)", "(17)"):
        assert symbol in md, symbol
    assert "If you have 45 minutes" in cells("05_constrained_decoding")[0].source


def test_review_corrections_stay_corrected():
    """../shared/reviews/chapters.md §4-5 on chapters 00-05."""
    md = {ch[:2]: markdown(ch) for ch in CHAPTERS}
    assert "computed_tokens` is smaller than" not in md["00"]
    assert "best compensates the model's errors" not in md["01"]
    assert "the reference translation is a typical output, not the mode" not in md["02"]
    assert "also cuts some of the truth" not in md["03"]
    assert "min_p(p)` | ... with probability ≥ p · max probability | truncation" not in md["03"]
    assert "fluency pays for it" not in md["04"]
    assert "would agree: these" not in md["04"]
    assert not re.search(r"DExperts[^|\n]*\|[^|\n]*\| eq\. 48", md["04"])
    minimally = [p for p in md["05"].split("\n\n") if "minimally invasive" in p]
    assert minimally and all("not what the survey calls" in p or "§3.5.1" in p
                             or "Beurer-Kellner, Fischer" in p for p in minimally)


def test_chapter_00_table_of_problem_sets_matches_the_package():
    md = markdown("00_welcome")
    rows = {m.group(1): m for m in re.finditer(
        r"^\| `(\w+)` \| ([^|]+) \| (\d+) \| ([^|]+) \|$", md, re.M)}
    assert set(rows) == set(PROBLEM_SETS)
    for name, row in rows.items():
        assert int(row.group(3)) == len(problem_set(name)), name
    for name in ("pool", "hard"):        # the chapters a row names are the package's own
        used = re.findall(r"\b(0\d|1[0-3])\b", rows[name].group(4))
        assert used and all(ch in PROBLEM_SETS[name] for ch in used), (name, used)
    assert "seed * 100003 + NNN" in md and "calibrate_test_set.py" in md
    assert "pool_by_cell.json" in md and "not about LLMs in general" in md


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_stored_claim_cells_ran_without_error(chapter):
    nb = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    claims = [c for c in nb.cells if "claim" in c.metadata.get("tags", [])]
    assert claims
    for c in claims:
        assert c.execution_count is not None, c.source[:80]
        assert not [o for o in c.outputs if o.output_type == "error"], c.source[:80]
