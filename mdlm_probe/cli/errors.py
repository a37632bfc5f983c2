"""`mdlm-probe errors RUN_DIR...`: mine eval/shift runs for failure patterns (mdlm_probe.runs.miners.mine_run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

import typer
from rich.markup import escape
from rich.text import Text

from mdlm_probe.runs import miners
from .options import console, err_console, warnings_to_stderr
from .tables import Col, check_format, format_option, print_records, print_table


def errors(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories holding samples.jsonl (eval) or shift.jsonl (shift)."),
    pattern: str = typer.Option("all", "--pattern", help="all, or a detector name (comma-separated for several): "
                                f"{', '.join(miners.DETECTORS)}."),
    only_wrong: bool = typer.Option(False, "--only-wrong", help="Mine only records scored wrong (or without an answer)."),
    show: int = typer.Option(3, "--show", help="Examples printed per pattern, evidence highlighted (0 = none)."),
    fmt: str = format_option(),
):
    """Find failure patterns (dropped trailing zeros, repeats, shifts ...); writes errors.jsonl + errors_summary.csv."""
    check_format(fmt)
    patterns = miners.resolve_patterns(pattern)
    with warnings_to_stderr():
        mined = [miners.mine_run(d, patterns, only_wrong=only_wrong) for d in run_dirs]
    if fmt != "table":  # errors_summary.csv's rows of every run; the examples are in errors.jsonl
        for m in mined:
            err_console.print(f"{m.run.dir}: {len(m.records)} records, {len(m.hits)} findings", highlight=False,
                              soft_wrap=True)
        print_records([row for m in mined for row in m.rows], fmt)
        return
    print_mined(mined, patterns, show)


def print_mined(mined: Sequence[miners.MinedRun], patterns: Sequence[str], show: int) -> None:
    """Per run a line, then one table of every run's summary rows, then up to `show` examples per pattern."""
    examples: dict[str, list] = {p: [] for p in patterns}
    rows = []
    for m in mined:
        rows += [{"run": row["run"], "pattern": row["pattern"], "records": f"{row['records']}/{row['n']}",
                  "rate": _pct(row["rate"]), "wrong": _pct(row["rate_wrong"]), "findings": str(row["findings"])}
                 for row in m.rows]
        for r, f in m.hits:
            if len(examples[f.pattern]) < show:
                examples[f.pattern].append((m.run.name, r, f))
        console.print(f"[dim]{escape(str(m.run.dir))}: {len(m.records)} records, {len(m.hits)} findings -> errors.jsonl, "
                      f"errors_summary.csv[/]", highlight=False, soft_wrap=True)
    cols = [Col("run", "run"), Col("pattern", "pattern"), Col("records", "records", justify="right"),
            Col("rate", "rate", justify="right"), Col("rate among wrong", "wrong", justify="right"),
            Col("findings", "findings", justify="right")]
    print_table(console, "failure patterns", cols, rows, group="run")
    for p, exs in examples.items():
        for name, r, f in exs:
            console.rule(f"[bold]{p}[/] · " + escape(f"{name} · {r['id']} · {r.get('verdict')}"))
            console.print(highlight_span(r.get("text") or "", f.start, f.end))
            console.print(f"[dim]reference:[/] {escape(str(r.get('reference')))}", highlight=False, soft_wrap=True)
            console.print(f"[dim]details:[/] {escape(json.dumps(f.details, ensure_ascii=False))}", highlight=False, soft_wrap=True)


def highlight_span(text: str, start: int, end: int) -> Text:
    t = Text(text)
    t.stylize("bold black on yellow", start, max(end, start + 1) if text else end)
    return t


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def register(app: typer.Typer) -> None:
    app.command(name="errors")(errors)
