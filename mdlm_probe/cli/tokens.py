"""`mdlm-probe tokens`: how many references a tokenizer exposes to the standard CTC collapse (no model needed)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from mdlm_probe.runs.tokens import KINDS, load_tokenizer, reference_texts, token_risk
from .options import console, data_dir_option


def tokens(
    tokenizer: List[str] = typer.Argument(..., help="Tokenizer folders or checkpoints (shipped names or folders)."),
    benchmark: Optional[str] = typer.Option("synthetic", "--benchmark", "-b",
                                            help="Whose references to read (synthetic, gsm8k, ...); "
                                                 "'none' with --data-file reads a JSONL file instead."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="The benchmark's local file, or a JSONL file "
                                             "of texts with --benchmark none."),
    data_dir: Optional[Path] = data_dir_option(),
    field: str = typer.Option("reference", "--field", help="reference (worked solution) or answer (final answer); "
                              "with --benchmark none, the JSONL field holding the text."),
    limit: Optional[int] = typer.Option(None, "--limit", help="First N texts only."),
    examples: int = typer.Option(2, "--examples", help="Examples shown per kind of pair."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Share of references with adjacent identical tokens, which the standard CTC collapse merges unless a
    <slack> separates them: trailing zeros, other repeated digits, other repeats (docs/tokens.md)."""
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter(f"--format {fmt!r}: expected table, csv or json")
    bench = None if benchmark in (None, "none") else benchmark
    texts, source = reference_texts(bench, str(data_file) if data_file else None, str(data_dir) if data_dir else None,
                                    field, limit)
    risks = [token_risk(load_tokenizer(t), texts, name=t, source=source, examples=examples) for t in tokenizer]
    rows = [r.row() for r in risks]
    if fmt == "json":
        print(json.dumps([{**row, "examples": r.examples} for row, r in zip(rows, risks)], indent=1))
    elif fmt == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    else:
        _print_table(risks, rows, source)


def _print_table(risks, rows, source: str) -> None:
    console.print(f"{rows[0]['n']} texts: {source}", highlight=False, soft_wrap=True)
    table = Table("tokenizer", "numbers", "95% CI", "any", "zeros", "digits", "other")
    table.columns[0].overflow = "fold"  # a long path wraps whole, never cut with an ellipsis
    for c in table.columns[1:]:
        c.justify, c.no_wrap = "right", True
    for r in rows:
        table.add_row(r["tokenizer"], f"{r['numbers_at_risk']:.3f}",
                      f"{r['numbers_ci_low']:.3f}-{r['numbers_ci_high']:.3f}", f"{r['at_risk']:.3f}",
                      *(f"{r[k + '_share']:.3f}" for k in KINDS))
    console.print(table)
    console.print("share of texts with adjacent identical tokens: numbers = a pair of digit tokens (zeros = inside a "
                  "number's trailing zeros, digits = other digits), any = of any kind, other = not digits "
                  "(e.g. '####'); --format csv adds the pair counts", highlight=False, soft_wrap=True)
    for risk in risks:
        for k in KINDS:
            for ex in risk.examples[k]:
                console.print(f"  {risk.tokenizer} · {k}: {ex}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="tokens")(tokens)
