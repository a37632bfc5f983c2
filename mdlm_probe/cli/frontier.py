"""`mdlm-probe frontier BENCH --modes exact,threshold=0.9,dual`: a thin layer over `mdlm_probe.runs.frontier.run_frontier`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from mdlm_probe.core.checkpoints import DEFAULT_CKPT
from mdlm_probe.core.rundir import default_out
from mdlm_probe.runs.frontier import csv_rows, run_frontier
from .eval import check_names
from .options import BENCHMARK_HELP, CKPT_HELP, console, load_options, sampler_options, warnings_to_stderr
from .tables import Col, check_format, format_option, print_result, print_table


@load_options(("device", "dtype", "adapter"))
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
    load_opts: dict = None,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace sub-runs with a different config."),
    fmt: str = format_option(),
    sampler: dict = None,
):
    """Accuracy against speed (tokens/s, tokens per forward) for each decoding mode, Pareto-optimal ones marked."""
    check_format(fmt)
    check_names(ckpt, benchmark, sampler, None, load_opts["adapter"])
    out = out or default_out("frontier", benchmark, [ckpt])
    with warnings_to_stderr():
        res = run_frontier(ckpt, benchmark, out, modes.split(","), sampler_overrides=sampler, limit=limit,
                           overwrite=overwrite, progress="auto", **load_opts)
    print_result(res, fmt, lambda r: csv_rows(r["modes"]), lambda: print_frontier(res, out))


def print_frontier(res: dict[str, Any], out: Path) -> None:
    def star(r: dict, key: str) -> str:
        return "*" if r[key] else ""
    rows = [{"mode": r["mode"], "n": str(r["n"]), "acc": f"{r['accuracy']:.3f}",
             "ci": f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]", "nfe": f"{r['nfe_mean']:.1f}",
             "tpf": f"{r['tokens_per_forward']:.2f}{star(r, 'pareto_tokens_per_forward')}",
             "tps": f"{r['tokens_per_second']:.1f}{star(r, 'pareto_tokens_per_second')}",
             "sps": f"{r['seconds_per_sample']:.4f}", "aup": f"{r['aup']:.1f}" if "aup" in r else "",
             "fam": r.get("aup_family", "")} for r in res["modes"]]
    cols = [Col("mode", "mode"), Col("n", "n", justify="right"), Col("accuracy", "acc", justify="right"),
            Col("95% CI", "ci", justify="right"), Col("NFE", "nfe", justify="right"),
            Col("TPF (gen tok/fwd)", "tpf", justify="right"), Col("gen tok/s", "tps", justify="right"),
            Col("s/sample", "sps", justify="right"), Col("AUP", "aup", justify="right"),
            Col("AUP curve", "fam")]
    print_table(console, f"{res['benchmark']} {res['ckpt']}: accuracy against speed", cols, rows,
                legend="NFE: forwards per sample; TPF: generated tokens per forward; gen tok/s: generated tokens "
                       "per second (the output canvas, EOS padding included; prompt tokens never count); AUP: "
                       "d3LLM's accuracy under parallelism of the mode's curve (modes differing only in threshold; "
                       "docs/invariance.md); * = Pareto-optimal (no mode is both more accurate and faster)")
    console.print(f"[dim]wrote {out / 'frontier.json'}, {out / 'frontier.csv'} and {out / 'frontier.png'}[/]",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="frontier")(frontier)
