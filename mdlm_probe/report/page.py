"""Self-contained HTML reports from run directories (`mdlm-probe report`).

`build_report(run_dirs, out)` reads eval runs (samples.jsonl), shift runs (shift.jsonl) and failure
patterns (errors.jsonl, or mined on the fly with `mdlm_probe.runs.miners`) and writes `index.html` plus the
CSV tables it shows. An invariance or frontier folder (invariance.json / frontier.json from `mdlm-probe
invariance` / `frontier`) adds its own section, and its sub-runs (runs/<variant>/) are read as runs, so
their cards line up with the fields that differ marked. The page opens from disk with no server and no network: CSS is inline, plots are
base64 PNGs, nothing links out. Every section appears only when the runs hold its data, otherwise a line
says what is missing.

This module puts the page together from `SECTIONS`, a list of section builders in page order (the
summary first, the configuration last): runs and study folders are read by `inputs`, the opening summary
is built in `summary`, the result sections in `sections`, the example sections (trajectories, diffs, failure patterns) in `examples`;
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
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jinja2

from mdlm_probe.core.rundir import make_folder
from .dynamics import section_dynamics
from .examples import section_diffs, section_patterns, section_trajectories
from .inputs import read_runs_and_studies
from .open_ended import section_open_ended
from .render import LEGEND, TokenText
from .repair import section_repair
from .sections import (section_accuracy, section_cards, section_compare, section_frontier, section_invariance,
                       section_runs, section_shift)
from .summary import section_summary


# ----------------------------------------------------------------------------------------- the sections
@dataclass
class Inputs:
    """What section builders read: the runs and study folders, and the sections built so far (`built`)."""
    runs: list
    studies: list
    glyphs: TokenText
    study_runs: frozenset
    built: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # more template variables a builder provides


@dataclass(frozen=True)
class Section:
    """One part of the page: `build(inputs)` returns its data (None: nothing to show), which the template
    partial templates/sections/<id>.html.j2 reads under the name `id`. `title`: its entry in the table of
    contents (None: data only, shown inside another section); `always`: shown, saying what is missing, even
    without data; `last`: built after every other section (it reads them through `inputs.built`)."""
    id: str
    title: str | None
    build: Callable[[Inputs], Any]
    always: bool = False
    last: bool = False


def _patterns(i: Inputs) -> Any:
    data, i.extra["patterns_absent"] = section_patterns(i.runs)
    return data


# Page order. A new section = a builder (report/sections.py or a module of its own), a template partial,
# and an entry here. The summary opens the page; the configuration (what was run, run cards) closes it.
SECTIONS: list[Section] = [
    Section("summary", "Summary", lambda i: section_summary(i.built), last=True),
    Section("accuracy", "Accuracy", lambda i: section_accuracy(i.runs, i.study_runs), always=True),
    Section("compare", None, lambda i: section_compare(i.runs)),  # shown in the accuracy section
    Section("invariance", "Invariance", lambda i: section_invariance(i.studies)),
    Section("frontier", "Frontier", lambda i: section_frontier(i.studies)),
    Section("shift", "Shift sensitivity", lambda i: section_shift(i.runs), always=True),
    Section("repair", "Repair", lambda i: section_repair(i.runs)),
    Section("open_ended", "Open-ended (Arena-Hard)", lambda i: section_open_ended(i.runs)),
    Section("patterns", "Failure patterns", _patterns, always=True),
    Section("dynamics", "Decoding dynamics", lambda i: section_dynamics(i.runs)),
    Section("trajectories", "Trajectories", lambda i: section_trajectories(i.runs, i.glyphs), always=True),
    Section("diffs", "Diffs", lambda i: section_diffs(i.runs), always=True),
    Section("runs", "What was run", lambda i: section_runs(i.runs), always=True),
    Section("cards", None, lambda i: section_cards(i.runs)),  # shown in "What was run"
]


def build_sections(runs: list, studies: list) -> tuple[dict[str, Any], dict[str, Any]]:
    """(section id -> data, frames still attached; more template variables), every builder run once."""
    study_dirs = {st.dir.resolve() for st in studies}
    inputs = Inputs(runs=runs, studies=studies, glyphs=TokenText(),
                    study_runs=frozenset(r.label for r in runs if r.dir.resolve().parent.parent in study_dirs))
    for sec in sorted(SECTIONS, key=lambda s: s.last):
        inputs.built[sec.id] = sec.build(inputs)
    return inputs.built, inputs.extra


# ----------------------------------------------------------------------------------------- the page
def build_report(run_dirs: Sequence[Path | str], out: Path | str, title: str | None = None,
                 generated: str | None = None) -> Path:
    """Write `out/index.html` and the CSV tables it shows; returns the HTML path."""
    runs, studies = read_runs_and_studies(run_dirs)
    out = Path(out)
    make_folder(out)
    built, extra = build_sections(runs, studies)
    frames: dict[str, Any] = {}
    for data in built.values():
        if isinstance(data, dict) and "frames" in data:
            frames.update(data.pop("frames"))
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
    shown = [s for s in SECTIONS if s.title is not None and (s.always or built[s.id])]
    html = env.get_template("report.html.j2").render(
        title=title or f"mdlm-probe report: {', '.join(r.label for r in runs)}",
        generated=generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=pkg_version, n_runs=len(runs), toc=[(s.id, s.title) for s in shown],
        sections=[s.id for s in shown], **built, **extra,
        csv_files=csv_files, run_paths=[str(r.dir) for r in runs] + [str(st.dir) for st in studies],
        glyph_legend=LEGEND)
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
