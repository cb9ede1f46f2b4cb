"""Export the chapters' figures for slides and papers: every plotly figure stored in the built
notebooks, in the print theme (white, dark text), without running a chapter.

    python scripts/export_figures.py                   # all chapters, PNG -> build/figures/
    python scripts/export_figures.py 07 13 --formats png svg pdf
    python scripts/export_figures.py --theme "as shown"

Writes ``build/figures/NN_chapter/figKK.<format>`` and ``build/figures/index.md`` (chapter,
file, title).  Rendering uses `widgets.export.save_figure` (kaleido and an installed Chromium).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from widgets.export import FORMATS, PLOTLY, THEMES, renderer, save_figure  # noqa: E402

OUT = ROOT / "build" / "figures"


def stored_figures(path: Path) -> list:
    """The plotly figures (dicts) stored in a built notebook, in order."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [out["data"][PLOTLY] for cell in nb.get("cells", [])
            for out in cell.get("outputs", []) if PLOTLY in out.get("data", {})]


def title_of(fig: dict) -> str:
    title = fig.get("layout", {}).get("title", "")
    text = title.get("text", "") if isinstance(title, dict) else str(title)
    return re.sub(r"<[^>]+>", " ", text.split("<br>")[0]).strip() or "(untitled)"


def export(chapters, formats=("png",), theme="print", out=OUT) -> list:
    """Write every stored figure of ``chapters`` in each of ``formats``; returns index rows."""
    rows, jobs = [], [(p, k, f) for p in chapters for k, f in enumerate(stored_figures(p), 1)]
    with renderer():
        for path, k, fig in tqdm(jobs, desc="figures"):
            for fmt in formats:
                dest = out / path.stem / f"fig{k:02d}.{fmt}"
                save_figure(fig, dest, format=fmt, theme=theme)
            rows.append((path.stem, f"{path.stem}/fig{k:02d}", title_of(fig)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("only", nargs="*", help="chapter name prefixes (default: all)")
    ap.add_argument("--formats", nargs="+", choices=FORMATS, default=["png"])
    ap.add_argument("--theme", choices=THEMES, default="print")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    chapters = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                if not args.only or any(p.stem.startswith(o) for o in args.only)]
    if not chapters:
        sys.exit(f"no built chapter matches {args.only}")
    rows = export(chapters, args.formats, args.theme, args.out)
    index = args.out / "index.md"
    index.write_text("| chapter | figure | title |\n|---|---|---|\n" + "".join(
        f"| {c} | {f} | {t} |\n" for c, f, t in rows), encoding="utf-8")
    print(f"{len(rows)} figures x {len(args.formats)} formats -> {args.out} (index: {index})")


if __name__ == "__main__":
    main()
