"""`mdlm-probe frontier BENCH --modes exact,threshold=0.9,dual`: a thin layer over `mdlm_probe.runs.frontier.run_frontier`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from mdlm_probe.core.checkpoints import DEFAULT_CKPT
from mdlm_probe.core.rundir import default_out
from mdlm_probe.runs.frontier import run_frontier
from .eval import check_names
from .options import (BENCHMARK_HELP, CKPT_HELP, adapter_option, console, device_option, dtype_option, sampler_options,
                      warnings_to_stderr)


@sampler_options
def frontier(
    benchmark: str = typer.Argument(..., help=BENCHMARK_HELP),
    ckpt: str = typer.Option(DEFAULT_CKPT, "--ckpt", help=CKPT_HELP),
    modes: str = typer.Option("exact,threshold=0.9,dual,dual+threshold=0.9", "--modes",
                              help="Comma-separated decoding modes: exact, prefix, dual, or setting=value, joined "
                              "with + (dual+threshold=0.9)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Decode the first N samples only."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for frontier.json / .csv / .png and "
                                       "runs/<mode>/ (default runs/frontier/<bench>-<ckpt>)."),
    device: Optional[str] = device_option(),
    dtype: Optional[str] = dtype_option(),
    adapter: Optional[str] = adapter_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace sub-runs with a different config."),
    sampler: dict = None,
):
    """Accuracy against speed (tokens/s, tokens per forward) for each decoding mode, Pareto-optimal ones marked."""
    check_names(ckpt, benchmark, sampler, None, adapter)
    out = out or default_out("frontier", benchmark, [ckpt])
    with warnings_to_stderr():
        res = run_frontier(ckpt, benchmark, out, modes.split(","), sampler_overrides=sampler, limit=limit,
                           overwrite=overwrite, progress="auto", device=device, dtype=dtype, adapter=adapter)
    print_frontier(res, out)


def print_frontier(res: dict[str, Any], out: Path) -> None:
    t = Table(title=f"{res['benchmark']} {res['ckpt']}: accuracy against speed (* = Pareto-optimal)")
    for c in ("mode", "n", "accuracy", "95% CI", "NFE", "tokens/forward", "tokens/s", "s/sample"):
        t.add_column(c, overflow="fold")
    for r in res["modes"]:
        star = lambda key: "*" if r[key] else ""  # noqa: E731
        t.add_row(r["mode"], str(r["n"]), f"{r['accuracy']:.3f}", f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]",
                  f"{r['nfe_mean']:.1f}", f"{r['tokens_per_forward']:.2f}{star('pareto_tokens_per_forward')}",
                  f"{r['tokens_per_second']:.1f}{star('pareto_tokens_per_second')}", f"{r['seconds_per_sample']:.4f}")
    console.print(t)
    console.print(f"[dim]wrote {out / 'frontier.json'}, {out / 'frontier.csv'} and {out / 'frontier.png'}[/]",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="frontier")(frontier)
