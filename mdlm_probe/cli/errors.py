"""`mdlm-probe errors RUN_DIR...`: mine eval/shift runs for failure patterns (mdlm_probe.runs.miners.mine_run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

import typer
from rich.table import Table
from rich.text import Text

from mdlm_probe.runs import miners
from .options import console, warnings_to_stderr


def errors(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories holding samples.jsonl (eval) or shift.jsonl (shift)."),
    pattern: str = typer.Option("all", "--pattern", help="all, or a detector name (comma-separated for several): "
                                f"{', '.join(miners.DETECTORS)}."),
    only_wrong: bool = typer.Option(False, "--only-wrong", help="Mine only records scored wrong (or without an answer)."),
    show: int = typer.Option(3, "--show", help="Examples printed per pattern, evidence highlighted (0 = none)."),
):
    """Find failure patterns (dropped trailing zeros, repeats, shifts ...); writes errors.jsonl + errors_summary.csv."""
    patterns = miners.resolve_patterns(pattern)
    with warnings_to_stderr():
        mined = [miners.mine_run(d, patterns, only_wrong=only_wrong) for d in run_dirs]
    print_mined(mined, patterns, show)


def print_mined(mined: Sequence[miners.MinedRun], patterns: Sequence[str], show: int) -> None:
    """Per run a line, then one table of every run's summary rows, then up to `show` examples per pattern."""
    table = Table(title="failure patterns", show_lines=False)
    for col, j in [("run", "left"), ("pattern", "left"), ("records", "right"), ("rate", "right"),
                   ("rate among wrong", "right"), ("findings", "right")]:
        table.add_column(col, justify=j, overflow="fold")
    examples: dict[str, list] = {p: [] for p in patterns}
    for m in mined:
        for row in m.rows:
            table.add_row(row["run"], row["pattern"], f"{row['records']}/{row['n']}", _pct(row["rate"]),
                          _pct(row["rate_wrong"]), str(row["findings"]))
        for r, f in m.hits:
            if len(examples[f.pattern]) < show:
                examples[f.pattern].append((m.run.name, r, f))
        console.print(f"[dim]{m.run.dir}: {len(m.records)} records, {len(m.hits)} findings -> errors.jsonl, "
                      f"errors_summary.csv[/]", highlight=False, soft_wrap=True)
    console.print(table)
    for p, exs in examples.items():
        for name, r, f in exs:
            console.rule(f"[bold]{p}[/] · {name} · {r['id']} · {r.get('verdict')}")
            console.print(highlight_span(r.get("text") or "", f.start, f.end))
            console.print(f"[dim]reference:[/] {r.get('reference')}", highlight=False, soft_wrap=True)
            console.print(f"[dim]details:[/] {json.dumps(f.details, ensure_ascii=False)}", highlight=False, soft_wrap=True)


def highlight_span(text: str, start: int, end: int) -> Text:
    t = Text(text)
    t.stylize("bold black on yellow", start, max(end, start + 1) if text else end)
    return t


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def register(app: typer.Typer) -> None:
    app.command(name="errors")(errors)
