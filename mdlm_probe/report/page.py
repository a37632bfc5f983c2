"""Self-contained HTML reports from run directories (`mdlm-probe report`).

`build_report(run_dirs, out)` reads eval runs (samples.jsonl), shift runs (shift.jsonl) and failure
patterns (errors.jsonl, or mined on the fly with `mdlm_probe.runs.miners`) and writes `index.html` plus the
CSV tables it shows. An invariance or frontier folder (invariance.json / frontier.json from `mdlm-probe
invariance` / `frontier`) adds its own section, and its sub-runs (runs/<variant>/) are read as runs, so
their cards line up with the fields that differ marked. The page opens from disk with no server and no network: CSS is inline, plots are
base64 PNGs, nothing links out. Every section appears only when the runs hold its data, otherwise a line
says what is missing.

This module puts the page together: runs and study folders are read by `inputs`, the summary sections
are built in `sections`, the example sections (trajectories, diffs, failure patterns) in `examples`;
statistics come from `core.stats`, figures from `plots`, token glyphs and diffs from `render`, and the page
is `templates/report.html.j2`.

Determinism: rows, examples and plots are ordered by ids and names only, plots carry no metadata, so a
rebuild from the same runs differs only in the "generated" timestamp. All text reaches the page through
Jinja2 autoescaping (model output is untrusted); this module never builds HTML strings.
"""

from __future__ import annotations

import datetime as _dt
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import jinja2

from .examples import section_diffs, section_patterns, section_trajectories
from .inputs import read_runs_and_studies
from .render import LEGEND, TokenText
from .sections import (section_accuracy, section_cards, section_compare, section_frontier, section_invariance,
                       section_runs, section_shift)


# ----------------------------------------------------------------------------------------- the page
def build_report(run_dirs: Sequence[Path | str], out: Path | str, title: str | None = None,
                 generated: str | None = None) -> Path:
    """Write `out/index.html` and the CSV tables it shows; returns the HTML path."""
    runs, studies = read_runs_and_studies(run_dirs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    glyphs = TokenText()
    runs_s = section_runs(runs)
    cards = section_cards(runs)
    study_runs = frozenset(r.label for r in runs if r.dir.resolve().parent.parent in {st.dir.resolve() for st in studies})
    accuracy = section_accuracy(runs, study_runs)
    compare = section_compare(runs)
    invariance = section_invariance(studies)
    frontier = section_frontier(studies)
    shift = section_shift(runs)
    patterns, patterns_absent = section_patterns(runs)
    trajectories = section_trajectories(runs, glyphs)
    diffs = section_diffs(runs)

    frames = dict(runs_s.pop("frames"))
    for sec in (cards, accuracy, compare, invariance, frontier, shift, patterns):
        if sec:
            frames.update(sec.pop("frames"))
    csv_files = []
    for name, df in frames.items():
        if df is None or df.empty:
            continue
        df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        csv_files.append(f"{name}.csv")
    try:
        pkg_version = version("mdlm-probe")
    except PackageNotFoundError:
        pkg_version = "unknown"
    env = jinja2.Environment(loader=jinja2.PackageLoader("mdlm_probe.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    toc = [("runs", "What was run"), ("accuracy", "Accuracy"),
           *([("invariance", "Invariance")] if invariance else []), *([("frontier", "Frontier")] if frontier else []),
           ("shift", "Shift sensitivity"), ("patterns", "Failure patterns"), ("trajectories", "Trajectories"),
           ("diffs", "Diffs")]
    html = env.get_template("report.html.j2").render(
        title=title or f"mdlm-probe report: {', '.join(r.label for r in runs)}",
        generated=generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=pkg_version, n_runs=len(runs), toc=toc, runs=runs_s, cards=cards, accuracy=accuracy, compare=compare,
        invariance=invariance, frontier=frontier, shift=shift,
        patterns=patterns, patterns_absent=patterns_absent, trajectories=trajectories, diffs=diffs,
        csv_files=csv_files, run_paths=[str(r.dir) for r in runs] + [str(st.dir) for st in studies],
        glyph_legend=LEGEND)
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
