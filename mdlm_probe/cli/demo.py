"""`mdlm-probe demo [--quick] [--out DIR]`: eval, shift, errors, compare and the report in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.markup import escape

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.report.demo import DEFAULT_CKPTS, DemoConfig, check_ckpts, run_demo
from mdlm_probe.runs import miners
from .compare import print_compare
from .errors import print_mined
from .options import console, sampler_options, warnings_to_stderr


def demo(
    quick: bool = typer.Option(False, "--quick", help="A minute or two: a handful of problems, one shift point."),
    out: Optional[Path] = typer.Option(None, "--out", help="Demo folder (default runs/demo, or runs/demo-quick)."),
    ckpt: Optional[List[str]] = typer.Option(None, "--ckpt", help="Checkpoints (repeatable; default tiny-ce-ft, "
                                             "tiny-ctc, tiny-ctc-surface). The first is compared with the others."),
    n_eval: Optional[int] = typer.Option(None, "--n-eval", help="Held-out synthetic problems per checkpoint."),
    n_shift: Optional[int] = typer.Option(None, "--n-shift", help="Problems in the shift sweep."),
    n_gsm8k: Optional[int] = typer.Option(None, "--n-gsm8k", help="GSM8K problems when ../shared/data has them (0 = none)."),
    num_processes: Optional[int] = typer.Option(None, "--num-processes", help="Eval and shift worker processes (default: 2 on 2+ cores; 1 with --quick)."),
    sampler: dict = None,
):
    """Run the whole study on the shipped checkpoints and write an HTML report (resumable)."""
    kw = {"ckpts": list(ckpt or DEFAULT_CKPTS), "sampler": {k: v for k, v in (sampler or {}).items() if v is not None}}
    for name, v in (("n_eval", n_eval), ("n_shift", n_shift), ("n_gsm8k", n_gsm8k), ("num_processes", num_processes)):
        if v is not None:
            if v < 0 or (v == 0 and name != "n_gsm8k"):
                raise BadInput(f"--{name.replace('_', '-')} {v}: must be positive")
            kw[name] = v
    cfg = DemoConfig.quick(**kw) if quick else DemoConfig(**kw)
    out = out or Path("runs") / ("demo-quick" if quick else "demo")
    check_ckpts(cfg.ckpts)
    console.print(f"[bold]mdlm-probe demo[/] into {escape(str(out))}: {escape(', '.join(cfg.ckpts))}; {cfg.n_eval} held-out problems, "
                  f"shift sweep on {cfg.n_shift}", highlight=False)
    with warnings_to_stderr():
        res = run_demo(cfg, out, log=lambda s: console.print(s, markup=False, highlight=False, soft_wrap=True),
                       progress="auto", show=_show)
    console.rule("timing")
    for name, secs in res["steps"]:
        console.print(f"{secs:8.1f} s  {name}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"[bold]{res['seconds']:8.1f} s  total[/]")
    console.print(f"report: {res['report']}  (open file://{Path(res['report']).resolve()})", markup=False, highlight=False,
                  soft_wrap=True)


def _show(what: str, result: Any) -> None:
    """Print a step's result as its own command would (errors: one example per pattern; compare: 5 ids)."""
    if what == "errors":
        print_mined(result, list(miners.DETECTORS), show=1)
    elif what == "compare":
        print_compare(*result, show_ids=5)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(sampler_options(demo))
