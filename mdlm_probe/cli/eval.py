"""`mdlm-probe eval BENCH`: a thin layer over `mdlm_probe.runs.evaluate.run_eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from mdlm_probe.core.checkpoints import DEFAULT_CKPT
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import default_out
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.runs.settings import default_ckpt, resolve_settings
from mdlm_probe.tasks.benchmarks import benchmark_names, get_benchmark
from .options import (BENCHMARK_HELP, CKPT_HELP, console, data_dir_option, load_options, out_option, preset_options,
                      sampler_options)
from .tables import check_format, format_option, print_json, print_records


def check_names(ckpt: str, benchmark: str, sampler: dict, predictions: Optional[Path], adapter: Optional[str],
                **given) -> None:
    """The cheap checks, before any data or weights load: a misspelt benchmark, checkpoint or sampler
    setting, or a preset the command cannot honour, is named as such, not reported as whatever the data
    loading stumbles on first. `given`: preset, chat, num_fewshot, dtype (`resolve_settings`)."""
    if benchmark not in benchmark_names():
        raise BadInput(f"unknown benchmark {benchmark!r}; expected one of {', '.join(benchmark_names())}")
    if predictions is None:
        resolve_settings(ckpt=ckpt, adapter=adapter, benchmark=benchmark, sampler=sampler, **given)


@load_options()
@preset_options
@sampler_options
def eval_command(
    benchmark: str = typer.Argument(..., help=BENCHMARK_HELP),
    ckpt: Optional[str] = typer.Option(None, "--ckpt", help=f"{CKPT_HELP} Default: the preset's model, else {DEFAULT_CKPT}."),
    out: Optional[Path] = out_option("eval"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate the first N samples only."),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot",
                                              help="Few-shot examples (default: the sidecar's default_fewshot, else 5 for gsm8k)."),
    preset_opts: dict = None,
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Local data: gsm8k test.jsonl; gpqa dataset.zip "
                                             "or csv; mbpp mbpp.jsonl or sanitized-mbpp.json; humaneval HumanEval.jsonl(.gz)."),
    data_dir: Optional[Path] = data_dir_option(),
    subset: Optional[str] = typer.Option(None, "--subset", help="gpqa: diamond (default), main or extended; mbpp: full (default) or sanitized."),
    predictions: Optional[Path] = typer.Option(None, "--predictions",
                                               help="Score completions made elsewhere (JSONL: id, completion); no model."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: evaluate every n-th batch into shards/ (merged when all are done)."),
    num_processes: int = typer.Option(1, "--num-processes", help="Spawn K shard workers (one GPU each when CUDA is there) and merge."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run with a different config in --out."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: a bar on a "
                                            "terminal, else a line every few seconds)."),
    load_opts: dict = None,
    fmt: str = format_option(),
    sampler: dict = None,
):
    """Evaluate a checkpoint on a benchmark: config.json, samples.jsonl, summary.json (resumable)."""
    check_format(fmt)
    ckpt = ckpt or default_ckpt(preset_opts["preset"])  # every other setting is resolved in run_eval (runs/settings.py)
    check_names(ckpt, benchmark, sampler, predictions, load_opts["adapter"], num_fewshot=num_fewshot,
                dtype=load_opts["dtype"], **preset_opts)
    bench = get_benchmark(benchmark, data_file=data_file, data_dir=data_dir, **({"subset": subset} if subset else {}))
    if out is None:
        out = default_out("eval", benchmark, ["predictions" if predictions else ckpt])
    s = run_eval(ckpt, bench, out, sampler_overrides=sampler, limit=limit, num_fewshot=num_fewshot,
                 predictions=predictions, shard=shard, overwrite=overwrite,
                 progress="auto" if progress is None else progress, subset=subset,
                 num_processes=num_processes, **load_opts, **preset_opts)
    if fmt != "table" and s.get("complete"):
        print_summary(s, fmt)
        return
    if not s.get("complete"):
        console.print(f"shard {s.get('shard')} done ({s['n_shard']} samples); {s['n_done']}/{s['n_planned']} "
                      f"in {out} so far; the last shard to finish writes summary.json", markup=False, soft_wrap=True)
        return
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]"
    verdicts = ", ".join(f"{k} {v}" for k, v in s["verdicts"].items())
    console.print(f"[bold]{s['benchmark']}[/] {escape(str(s['ckpt']))}: accuracy {acc} (n={s['n']}; {verdicts}; "
                  f"truncated prompts {s['truncated_prompts']})", highlight=False, soft_wrap=True)
    if getattr(bench, "kind", None) == "open":  # nothing scored at eval time (docs/arena_hard.md)
        console.print(f"open-ended: not scored here; answers also in {out}/model_answer/ (Arena-Hard format); "
                      f"score them with `mdlm-probe judge {out} --baseline ...`", highlight=False, soft_wrap=True)
    ex, rate = s.get("extraction"), s.get("empty_rate")
    if ex:  # the two GSM8K extractions lm-eval reports, and the share with nothing to score
        console.print(f"extraction: strict {_pct(ex['strict'])} · flexible {_pct(ex['flexible'])} · "
                      f"strict answer found {_pct(ex.get('strict_found'))}", highlight=False, soft_wrap=True)
    if rate is not None:
        console.print(f"empty or EOS-only outputs: {s.get('empty_outputs', 0)}/{s['n']} ({_pct(rate)})",
                      highlight=False, soft_wrap=True)
    t = s["timing"]
    if t.get("tokens_per_second"):
        console.print(f"{t['tokens_per_second']} tokens/s, {t['wall_seconds']} s wall · {out}/summary.json",
                      markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"{out}/summary.json", markup=False, highlight=False)


def print_summary(s: dict, fmt: str) -> None:
    """summary.json's content (json), or its headline numbers as one CSV row (ci_low / ci_high: the Wilson CI)."""
    if fmt == "json":
        print_json(s)
        return
    ci = s.get("ci95") or [None, None]
    print_records([{"benchmark": s.get("benchmark"), "ckpt": s.get("ckpt"), "n": s.get("n"),
                    "accuracy": s.get("accuracy"), "ci_low": ci[0], "ci_high": ci[1],
                    **{f"verdict_{k}": v for k, v in (s.get("verdicts") or {}).items()},
                    "truncated_prompts": s.get("truncated_prompts"), "empty_rate": s.get("empty_rate"),
                    "tokens_per_second": (s.get("timing") or {}).get("tokens_per_second")}], "csv")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_command)
