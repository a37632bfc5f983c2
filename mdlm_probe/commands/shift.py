"""`mdlm-probe shift`: one-position shift interventions during decoding, swept and measured (docs/shift.md)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Optional

import typer

from ..checkpoints import DEFAULT_CKPT
from ..errors import BadInput


def _floats(s: str, opt: str) -> list[float]:
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"{opt} {s!r}: expected comma-separated numbers, e.g. 0,0.01,0.05") from None


def _ints(s: str, opt: str) -> list[int]:
    try:
        return [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"{opt} {s!r}: expected comma-separated integers, e.g. 12,40") from None


def shift(
    ckpt: Optional[List[str]] = typer.Option(None, "--ckpt", help="Checkpoint (repeatable; default tiny-ce)."),
    benchmark: str = typer.Option("synthetic", "--benchmark", help="Benchmark whose problems are decoded."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Local data file for the benchmark."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use the first N problems."),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", help="Few-shot examples (default: the benchmark's)."),
    chat: bool = typer.Option(False, "--chat/--no-chat", help="Wrap prompts in the tokenizer's chat template."),
    mode: str = typer.Option("insert,delete", "--mode", help="Comma-separated: insert, delete, displace, swap."),
    fractions: Optional[str] = typer.Option(None, "--fractions", help="Shares p of gen-length to edit (k = round(p*G)); default 0,0.01,0.05."),
    at: Optional[str] = typer.Option(None, "--at", help="Committed fractions at which the edit fires; default 0.5."),
    at_step: Optional[int] = typer.Option(None, "--at-step", help="Fire after this many denoising steps instead of --at."),
    positions: Optional[str] = typer.Option(None, "--positions", help="Fixed response positions (0-based), e.g. 12,40, instead of --fractions."),
    direction: str = typer.Option("right", "--direction", help="displace only: right or left."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (config.json, shift.jsonl, shift_summary.csv, PNGs)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run with a different config in --out."),
    num_processes: int = typer.Option(1, "--num-processes", help="Worker processes (CPU cores are split between them; one GPU each is up to you via --device)."),
    clean_from: Optional[List[Path]] = typer.Option(None, "--clean-from", help="Eval run dir(s) whose records are the clean run (same checkpoint and settings, T = 0): copied, not decoded again."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Decode this one prompt clean and shifted and show the pair (writes nothing)."),
    show: bool = typer.Option(False, "--show", help="Print a clean/shifted pair side by side, differences highlighted."),
    judge_url: Optional[str] = typer.Option(None, "--judge-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Model name served at --judge-url."),
    judge_timeout: float = typer.Option(60.0, "--judge-timeout", help="Seconds per judge request."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Force an adapter: llada, dream, mdlm, masked-lm, local."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ..."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16, float16, float64."),
    sampler: dict = None,
):
    """Shift tokens by one position mid-decoding and measure the damage against the paired clean run."""
    from .. import shift as lib
    from ..adapters import load_model
    from ..benchmarks import get_benchmark
    from ..checkpoints import checkpoint_hash, read_sidecar, resolve
    from ..cli import console, err_console
    from ..rundir import prepare_run_dir
    from ..sampler import resolve_sampler

    ckpts = list(dict.fromkeys(ckpt or [DEFAULT_CKPT]))
    if at is not None and at_step is not None:
        raise BadInput("give --at or --at-step, not both")
    if positions is not None and fractions is not None:
        raise BadInput("give --fractions or --positions, not both")
    if limit is not None and limit <= 0:
        raise BadInput(f"--limit {limit} must be positive")
    grid = lib.ShiftGrid(modes=[m.strip() for m in mode.split(",") if m.strip()],
                         fractions=[0.0] if positions is not None else _floats(fractions or "0,0.01,0.05", "--fractions"),
                         ats=[] if at_step is not None else _floats(at or "0.5", "--at"), at_step=at_step,
                         positions=None if positions is None else _ints(positions, "--positions"), direction=direction)
    if judge_url is not None or judge_model is not None:
        from ..judge import Judge

        judge = Judge(url=judge_url or "", model=judge_model or "", timeout=judge_timeout)
    else:
        judge = None

    # Resolve each checkpoint's sampler from its sidecar (no weights loaded yet), and check the grid on it.
    paths = {c: resolve(c) for c in ckpts}
    cfgs = {c: resolve_sampler(sampler, SimpleNamespace(sidecar=read_sidecar(paths[c]))) for c in ckpts}
    for c in ckpts:
        grid.validate(cfgs[c].gen_length)
    if not grid.specs():
        raise BadInput("nothing to shift: every fraction is 0 (add e.g. --fractions 0,0.01)")

    def load(c: str):
        return load_model(c, adapter=adapter, device=device, dtype=dtype)

    if prompt is not None:
        _show_prompt(prompt, ckpts, cfgs, grid, load, chat)
        return
    if out is None:
        raise BadInput("give --out DIR (or --prompt TEXT to look at one pair)")

    bench = get_benchmark(benchmark, data_file=data_file)
    samples = bench.load()
    samples = samples[:limit] if limit else samples
    if not samples:
        raise BadInput(f"benchmark {benchmark} has no samples")
    nshot = bench.default_fewshot if num_fewshot is None else num_fewshot
    config = {
        "command": "shift", "benchmark": benchmark, "data_source": bench.data_source(), "limit": limit,
        "n": len(samples), "num_fewshot": nshot, "chat": chat, "adapter": adapter, "dtype": dtype,
        "checkpoints": [{"name": c, "path": str(paths[c]), "hash": checkpoint_hash(paths[c]),
                         "sampler": cfgs[c].to_dict()} for c in ckpts],
        "grid": grid.to_dict(), "settings": [s.setting for s in grid.specs()],
    }
    out = prepare_run_dir(out, config, overwrite=overwrite, outputs=lib.OUTPUTS)
    log = (lambda s: err_console.print(s, highlight=False)) if sys.stderr.isatty() else (lambda s: None)
    if num_processes < 1:
        raise BadInput(f"--num-processes {num_processes}: must be at least 1")
    clean = {}  # checkpoint -> {"dir", "hash"} of an eval run that can stand in for its clean run
    for d in clean_from or []:
        if not (Path(d) / "config.json").is_file():
            raise BadInput(f"--clean-from {d}: not an eval run directory (no config.json)")
        for c in ckpts:
            h = checkpoint_hash(paths[c])
            if lib.reusable_clean(d, h, cfgs[c], bench.name, nshot, chat):
                clean[c] = {"dir": str(d), "hash": h}
    if num_processes > 1:
        job = {"ckpts": ckpts, "benchmark": benchmark, "data_file": None if data_file is None else str(data_file),
               "n": len(samples), "cfgs": {c: cfgs[c].to_dict() for c in ckpts}, "grid": grid.to_dict(),
               "num_fewshot": nshot, "chat": chat, "adapter": adapter, "device": device, "dtype": dtype,
               "clean_from": clean}
        written = lib.run_sweep_parallel(num_processes, job, out, log=log)
    else:
        reuse = {c: lib.reusable_clean(v["dir"], v["hash"], cfgs[c], bench.name, nshot, chat) for c, v in clean.items()}
        written = lib.run_sweep(ckpts, bench, samples, cfgs, grid, out, load=load, num_fewshot=nshot, chat=chat,
                                log=log, clean_from=reuse)

    judged = None
    from ..judge import judge_run, read_judged
    from ..records import read_records

    if judge is not None:
        judged = judge_run(out, judge, log=lambda s: err_console.print(s, highlight=False))
    else:
        judged = read_judged(out)
    recs = read_records(out / lib.SHIFT_FILE)[0]
    rows = lib.summarize(recs, grid, judged=judged)
    lib.write_summary_csv(rows, out / lib.SUMMARY_FILE)
    lib.plot_accuracy(rows, out / lib.ACC_PNG)
    heatmap = lib.plot_drop_heatmap(rows, out / lib.HEATMAP_PNG)
    _print_table(console, rows)
    console.print(f"wrote {written} new records; {out / lib.SHIFT_FILE}, {out / lib.SUMMARY_FILE}, "
                  f"{lib.ACC_PNG}{', ' + lib.HEATMAP_PNG if heatmap else ''} in {out}", highlight=False)
    if show:
        by_id = {(r["ckpt"], r["id"]): r for r in recs}
        first_spec = grid.specs()[0].setting
        for c in ckpts:
            s = next((r for r in recs if r["ckpt"] == c and r["id"].endswith("@" + first_spec)), None)
            if s is not None:
                _render_pair(console, load(c), by_id[(c, s["intervention"]["clean_id"])], s, title=f"{c} · {s['id']}")


def _print_table(console, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title="shift summary: drop = clean - shifted accuracy [95% paired bootstrap CI]", box=None)
    for col in ("ckpt", "mode", "p", "at", "n", "clean", "shifted", "drop [CI]", "flips", "edit", "absorbed"):
        t.add_column(col, no_wrap=col in ("drop [CI]",))
    for r in rows:
        t.add_row(r["ckpt"], r["mode"], f"{r['fraction']:g}" if not isinstance(r["fraction"], str) else r["fraction"],
                  r["at"], str(r["n"]), f"{r['acc_clean']:.3f}", f"{r['acc_shifted']:.3f}",
                  f"{r['drop']:+.3f} [{r['drop_lo']:+.2f},{r['drop_hi']:+.2f}]", f"{r['flip_rate']:.2f}",
                  f"{r['edit_tokens']:.2f}", f"{r['absorbed']:.2f}")
    console.print(t)


# ----------------------------------------------------------------------------------------- --show
def _show_prompt(prompt: str, ckpts, cfgs, grid, load, chat: bool) -> None:
    from ..cli import console
    from ..records import make_record
    from ..sampler import generate

    for c in ckpts:
        model, cfg = load(c), cfgs[c]
        clean = make_record(id="prompt/0@clean", ckpt=c, **generate(model, [prompt], cfg, chat=chat,
                                                                     sample_ids=["prompt/0"])[0])
        for spec in grid.specs():
            rec = generate(model, [prompt], cfg, hooks=[spec], chat=chat, sample_ids=["prompt/0"])[0]
            iv = (rec.pop("hook_info", None) or {}).get(spec.key)
            shifted = make_record(id=f"prompt/0@{spec.setting}", ckpt=c, intervention=iv, **rec)
            _render_pair(console, model, clean, shifted, title=f"{c} · {spec.setting}")


def _tokens(model, ids: list[int]) -> list[str]:
    names = {model.mask_id: "░", model.slack_id: "·", model.eos_id: "⊣"}
    return [names.get(i) or model.tokenizer.decode([i], skip_special_tokens=False) for i in ids]


def _diff(a: list[str], b: list[str], sep: str) -> tuple[Any, Any]:
    """Two rich Texts, the parts not shared (aligned by difflib) highlighted: red in a, green in b."""
    from rich.text import Text

    ta, tb = Text(), Text()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        ta.append(sep.join(a[i1:i2]) + (sep if i2 > i1 else ""), style=None if op == "equal" else "bold white on red")
        tb.append(sep.join(b[j1:j2]) + (sep if j2 > j1 else ""), style=None if op == "equal" else "bold black on green")
    return ta, tb


def _render_pair(console, model, clean: dict, shifted: dict, title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    iv = shifted.get("intervention") or {}
    t = Table(title=title, show_lines=True)
    t.add_column("")
    t.add_column("clean")
    t.add_column("shifted")
    if iv.get("canvas_before") is not None:
        pts = set(iv.get("points") or [])
        before = Text()
        for q, tok in enumerate(_tokens(model, iv["canvas_before"])):
            before.append(tok, style="bold reverse" if q in pts else None)
        after = Text()
        for q, (x, y) in enumerate(zip(iv["canvas_before"], iv["canvas_after"])):
            after.append(_tokens(model, [y])[0], style="bold reverse" if x != y else None)
        t.add_row(f"canvas after step {iv.get('fired_step')}:\nbefore | after {iv.get('mode')} at {sorted(pts)}",
                  before, after)
    elif shifted.get("intervention") is not None or "@" in shifted.get("id", ""):
        t.add_row("intervention", "", "did not fire (the trigger was never reached)")
    a, b = _diff(_tokens(model, clean["output_ids"]), _tokens(model, shifted["output_ids"]), "")
    t.add_row("final canvas", a, b)
    a, b = _diff(list(clean["text"]), list(shifted["text"]), "")
    t.add_row("text", a, b)
    if clean.get("correct") is not None or shifted.get("correct") is not None:
        t.add_row("correct", str(clean.get("correct")), str(shifted.get("correct")))
    console.print(t)
    console.print("░ mask  · <slack>  ⊣ EOS; highlighted: what differs", style="dim", highlight=False)


def register(app: typer.Typer) -> None:
    from ..cli import sampler_options

    app.command(name="shift")(sampler_options(shift))
