"""Chapters 12, 13 and 14 as course material (issue 19): the maths on the page beside the package's
own code, claims checked by tagged cells, the review's corrections, and the instructor's frame
(prerequisites, student time, a 45-minute path, key takeaways, further reading).  Reads the
stored notebooks only; nbval runs their cells."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = {"12": ROOT / "notebooks" / "12_speeding_up_generation.ipynb",
            "13": ROOT / "notebooks" / "13_speculative_decoding.ipynb",
            "14": ROOT / "notebooks" / "14_speeding_up_metageneration.ipynb"}
LOOK_INSIDE = re.compile(r"^show_source\(")


def cells(chapter):
    return nbformat.read(CHAPTERS[chapter], as_version=4).cells


def markdown(chapter) -> str:
    return "\n".join(c.source for c in cells(chapter) if c.cell_type == "markdown")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("chapter, claims, looks", [("12", 8, 6), ("13", 8, 3), ("14", 9, 5)])
def test_claims_and_look_inside_cells(chapter, claims, looks):
    nb = cells(chapter)
    claim_cells = [c for c in nb if "claim" in tags(c)]
    assert len(claim_cells) >= claims
    for c in claim_cells:   # each asserts something and ran without error
        assert c.cell_type == "code" and "assert " in c.source
        assert not [o for o in c.outputs if o.output_type == "error"]
        assert "hold" in "".join(o.get("text", "") for o in c.outputs)
    shown = [i for i, c in enumerate(nb) if c.cell_type == "code" and LOOK_INSIDE.match(c.source)]
    assert len(shown) >= looks
    for i in shown:         # next to an equation, and rendering the package's source
        before = "\n".join(c.source for c in nb[max(0, i - 2):i] if c.cell_type == "markdown")
        assert "$" in before and "Look inside" in before, nb[i].source
        md = nb[i].outputs[0]["data"]["text/markdown"]
        assert "```python" in md and ("workbench/" in md)


@pytest.mark.parametrize("chapter", ["12", "13", "14"])
def test_instructors_frame(chapter):
    text = markdown(chapter)
    head = cells(chapter)[0].source
    for needed in ("**Prerequisites**", "**Student time**", "**Survey sections**"):
        assert needed in head, needed
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[-2:] == ["Key takeaways", "Further reading"]
    reading = text.split("## Further reading")[1]
    assert len(re.findall(r"\((?:19|20)\d\d\)", reading)) >= 5     # papers with their years
    assert "§7" in reading


@pytest.mark.parametrize("chapter", ["12", "13"])
def test_chapters_12_13_fit_a_lab_with_a_short_path(chapter):
    head = cells(chapter)[0].source
    assert "If you have 30 minutes" in head
    time = re.search(r"\*\*Student time\*\*: (\d+)–(\d+) minutes", head)
    assert time and int(time.group(2)) <= 90      # one 90-minute lab each, since the split


def test_chapter_12_equations():
    text = markdown("12")
    assert "nearly the same step time" not in "".join(
        str(o.get("data", {})) for c in cells("12") if c.cell_type == "code" for o in c.outputs)
    for eq in (r"\quad (53)", r"\quad (54)", r"\quad (55)", r"\quad (56)"):
        assert eq in text, eq


def test_chapter_13_corrections():
    text = markdown("13")
    # the survey's rejection probability, quoted and corrected
    assert "rejecting it when" in text and "upside down" in text
    assert "rejected with probability** $1 - p_\\theta/q$" in text
    # prompt lookup's origin
    assert "Prompt lookup decoding** (Saxena, 2023)" in text
    assert "Prompt lookup decoding** (Yang" not in text
    # equations of the chapter, typeset
    for eq in (r"\frac{1 - \alpha^{k+1}}{1 - \alpha}", r"(1 - \alpha)(k c + 1)",
               r"\min\!\left(1,\ \frac{p(d_i)}{q(d_i)}\right)", r"p_{\text{res}}(y)"):
        assert eq in text, eq


def test_chapter_14_shows_padding_and_explains_the_lru_cliff():
    nb = cells("14")
    out = "\n".join(o.get("text", "") for c in nb if c.cell_type == "code" for o in c.outputs)
    padding = re.search(r"rode along for (\d+) of", out)
    assert padding and int(padding.group(1)) > 0
    assert "cyclic access pattern" in markdown("14")
    assert "nearly the same step time" not in "".join(
        str(o.get("data", {})) for c in nb if c.cell_type == "code" for o in c.outputs)
