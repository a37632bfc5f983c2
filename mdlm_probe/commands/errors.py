"""`mdlm-probe errors RUN_DIR...`: mine eval/shift runs for failure patterns (mdlm_probe.miners)."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import BadInput

SUMMARY_FIELDS = ["run", "pattern", "n", "n_wrong", "records", "findings", "rate", "records_wrong", "rate_wrong"]


def errors(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories holding samples.jsonl (eval) or shift.jsonl (shift)."),
    pattern: str = typer.Option("all", "--pattern", help="all, or a detector name (comma-separated for several): "
                                "trailing-zero, repeated-token, misplaced-char, shift-artifact, slack-leak, eos-truncation."),
    only_wrong: bool = typer.Option(False, "--only-wrong", help="Mine only records scored wrong (or without an answer)."),
    show: int = typer.Option(3, "--show", help="Examples printed per pattern, evidence highlighted (0 = none)."),
):
    """Find failure patterns (dropped trailing zeros, repeats, shifts ...); writes errors.jsonl + errors_summary.csv."""
    from .. import miners
    from ..cli import console, err_console
    from ..compare import load_run

    patterns = miners.resolve_patterns(pattern)
    table = Table(title="failure patterns", show_lines=False)
    for col, j in [("run", "left"), ("pattern", "left"), ("records", "right"), ("rate", "right"),
                   ("rate among wrong", "right"), ("findings", "right")]:
        table.add_column(col, justify=j)
    examples: dict[str, list] = {p: [] for p in patterns}
    for d in run_dirs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = load_run(d)
        for w in caught:
            err_console.print(f"mdlm-probe: warning: {w.message}", highlight=False, soft_wrap=True)
        recs = [r for r in run.records if miners.is_wrong(r)] if only_wrong else run.records
        no_ref = sum(not miners.has_reference(r) for r in recs)
        if no_ref:
            ref_pats = [p for p in patterns if p in miners.NEEDS_REFERENCE]
            if no_ref == len(recs) and len(ref_pats) == len(patterns):
                raise BadInput(f"{d}: no record has a reference, and {', '.join(patterns)} need(s) one")
            if ref_pats:
                err_console.print(f"mdlm-probe: warning: {d}: {no_ref} record(s) without a reference; "
                                  f"{', '.join(ref_pats)} skip them", highlight=False, soft_wrap=True)
        hits = miners.mine_records(recs, patterns)
        with open(run.dir / "errors.jsonl", "w", encoding="utf-8") as fh:
            for r, f in hits:
                fh.write(json.dumps({"id": r["id"], "ckpt": r.get("ckpt"), "pattern": f.pattern, "start": f.start,
                                     "end": f.end, "evidence": f.evidence, "details": f.details,
                                     "correct": r.get("correct"), "verdict": r.get("verdict")},
                                    ensure_ascii=False) + "\n")
        # A shift run may hold several checkpoints: one summary row set per checkpoint.
        ckpts = sorted({str(r.get("ckpt")) for r in recs})
        groups = [(run.name, recs, hits)] if len(ckpts) <= 1 else [
            (f"{run.name}/{c}", [r for r in recs if str(r.get("ckpt")) == c],
             [(r, f) for r, f in hits if str(r.get("ckpt")) == c]) for c in ckpts]
        with open(run.dir / "errors_summary.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
            w.writeheader()
            for label, g_recs, g_hits in groups:
                rows = miners.pattern_summary(g_recs, g_hits, patterns)
                for row in rows:
                    w.writerow({"run": label, **row})
                    table.add_row(label, row["pattern"], f"{row['records']}/{row['n']}", _pct(row["rate"]),
                                  _pct(row["rate_wrong"]), str(row["findings"]))
        for r, f in hits:
            if len(examples[f.pattern]) < show:
                examples[f.pattern].append((run.name, r, f))
        console.print(f"[dim]{run.dir}: {len(recs)} records, {len(hits)} findings -> errors.jsonl, "
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
