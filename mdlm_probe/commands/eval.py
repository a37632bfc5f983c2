"""`mdlm-probe eval BENCH`: a thin layer over `mdlm_probe.evaluate.run_eval`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..checkpoints import DEFAULT_CKPT
from ..cli import CKPT_HELP, console, sampler_options


@sampler_options
def eval_command(
    benchmark: str = typer.Argument(..., help="gsm8k, gpqa or synthetic."),
    ckpt: str = typer.Option(DEFAULT_CKPT, "--ckpt", help=CKPT_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/eval/<bench>-<ckpt>)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate the first N samples only."),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot",
                                              help="Few-shot examples (default: the sidecar's default_fewshot, else 5 for gsm8k)."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Local data: gsm8k test.jsonl; gpqa dataset.zip or csv."),
    subset: Optional[str] = typer.Option(None, "--subset", help="gpqa: diamond (default), main or extended."),
    predictions: Optional[Path] = typer.Option(None, "--predictions",
                                               help="Score completions made elsewhere (JSONL: id, completion); no model."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: evaluate every n-th batch into shards/ (merged when all are done)."),
    num_processes: int = typer.Option(1, "--num-processes", help="Spawn K shard workers (one GPU each when CUDA is there) and merge."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run with a different config in --out."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: when stderr is a terminal)."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Force an adapter: llada, dream, mdlm, masked-lm, local."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ..."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16, float16, float64."),
    sampler: dict = None,
):
    """Evaluate a checkpoint on a benchmark: config.json, samples.jsonl, summary.json (resumable)."""
    from ..evaluate import run_eval

    if out is None:
        name = "predictions" if predictions else Path(ckpt).name
        out = Path("runs") / "eval" / f"{benchmark}-{name}"
    s = run_eval(ckpt, benchmark, out, sampler_overrides=sampler, limit=limit, num_fewshot=num_fewshot, chat=chat,
                 data_file=data_file, predictions=predictions, shard=shard, overwrite=overwrite,
                 progress=sys.stderr.isatty() if progress is None else progress, subset=subset,
                 num_processes=num_processes, adapter=adapter, device=device, dtype=dtype)
    if not s.get("complete"):
        console.print(f"shard {s.get('shard')} done ({s['n_shard']} samples); {s['n_done']}/{s['n_planned']} "
                      f"in {out} so far; the last shard to finish writes summary.json", soft_wrap=True)
        return
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]"
    verdicts = ", ".join(f"{k} {v}" for k, v in s["verdicts"].items())
    console.print(f"[bold]{s['benchmark']}[/] {s['ckpt']}: accuracy {acc} (n={s['n']}; {verdicts}; "
                  f"truncated prompts {s['truncated_prompts']})", highlight=False, soft_wrap=True)
    t = s["timing"]
    if t.get("tokens_per_second"):
        console.print(f"{t['tokens_per_second']} tokens/s, {t['wall_seconds']} s wall · {out}/summary.json",
                      highlight=False, soft_wrap=True)
    else:
        console.print(f"{out}/summary.json", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_command)
