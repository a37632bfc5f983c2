"""`mdlm-probe shift`: one-position shift interventions during decoding, swept and measured (docs/shift.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table
from rich.text import Text

from mdlm_probe.adapters import load_model
from mdlm_probe.core.checkpoints import DEFAULT_CKPT
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import default_out
from mdlm_probe.report.render import diff_segments, legend_text, model_glyphs
from mdlm_probe.runs import shift as lib
from mdlm_probe.runs.shift_repair import REPAIR_CSV, run_shift_repair
from mdlm_probe.runs.settings import default_ckpt
from mdlm_probe.tasks.presets import get_preset
from mdlm_probe.tasks.judge import Judge
from .options import (BENCHMARK_HELP, CKPT_HELP, console, data_dir_option, err_console, load_options, out_option,
                      preset_options, sampler_options)
from .tables import Col, check_format, format_option, print_table


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


def _grid(mode: str, fractions: Optional[str], at: Optional[str], at_step: Optional[int], positions: Optional[str],
          direction: str) -> lib.ShiftGrid:
    """The sweep's grid from the options (--at or --at-step; --fractions or --positions)."""
    if at is not None and at_step is not None:
        raise BadInput("give --at or --at-step, not both")
    if positions is not None and fractions is not None:
        raise BadInput("give --fractions or --positions, not both")
    return lib.ShiftGrid(modes=[m.strip() for m in mode.split(",") if m.strip()],
                         fractions=[0.0] if positions is not None else _floats(fractions or "0,0.01,0.05", "--fractions"),
                         ats=[] if at_step is not None else _floats(at or "0.5", "--at"), at_step=at_step,
                         positions=None if positions is None else _ints(positions, "--positions"), direction=direction)


@load_options()
@preset_options
def shift(
    ckpt: Optional[List[str]] = typer.Option(None, "--ckpt", help=f"{CKPT_HELP} Repeatable; default the preset's model, else {DEFAULT_CKPT}."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help=f"{BENCHMARK_HELP} Default: the preset's, else synthetic."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Local data file for the benchmark."),
    data_dir: Optional[Path] = data_dir_option(),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use the first N problems."),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", help="Few-shot examples (default: the benchmark's)."),
    preset_opts: dict = None,
    mode: str = typer.Option("insert,delete", "--mode", help="Comma-separated: insert, delete, displace, swap."),
    fractions: Optional[str] = typer.Option(None, "--fractions", help="Shares p of gen-length to edit (k = round(p*G)); default 0,0.01,0.05."),
    at: Optional[str] = typer.Option(None, "--at", help="Committed fractions at which the edit fires; default 0.5."),
    at_step: Optional[int] = typer.Option(None, "--at-step", help="Fire after this many denoising steps instead of --at."),
    positions: Optional[str] = typer.Option(None, "--positions", help="Fixed response positions (0-based), e.g. 12,40, instead of --fractions."),
    direction: str = typer.Option("right", "--direction", help="displace only: right or left."),
    out: Optional[Path] = out_option("shift"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run with a different config in --out."),
    num_processes: int = typer.Option(1, "--num-processes", help="Worker processes (one GPU each when CUDA is there, else one CPU thread each unless --threads)."),
    clean_from: Optional[List[Path]] = typer.Option(None, "--clean-from", help="Eval run dir(s) whose records are the clean run (same checkpoint and settings, T = 0): copied, not decoded again."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Decode this one prompt clean and shifted and show the pair (writes nothing)."),
    show: bool = typer.Option(False, "--show", help="Print a clean/shifted pair side by side, differences highlighted."),
    judge_url: Optional[str] = typer.Option(None, "--judge-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Model name served at --judge-url."),
    judge_timeout: float = typer.Option(60.0, "--judge-timeout", help="Seconds per judge request."),
    load_opts: dict = None,
    fmt: str = format_option(),
    sampler: dict = None,
):
    """Shift tokens by one position mid-decoding and measure the damage against the paired clean run."""
    check_format(fmt)
    # every other setting is resolved in run_shift (runs/settings.py), as for a library call
    preset = preset_opts["preset"]
    benchmark = benchmark or (get_preset(preset).benchmark if preset else "synthetic")
    ckpts = list(dict.fromkeys(ckpt or [default_ckpt(preset)]))
    grid = _grid(mode, fractions, at, at_step, positions, direction)
    judge = None
    if judge_url is not None or judge_model is not None:
        judge = Judge(url=judge_url or "", model=judge_model or "", timeout=judge_timeout)

    st = lib.shift_settings(ckpts, grid, adapter=load_opts["adapter"], sampler=sampler, benchmark=benchmark,
                            num_fewshot=num_fewshot, dtype=load_opts["dtype"], **preset_opts)  # checked before data loads

    def load(c: str):
        return load_model(c, **{**load_opts, "dtype": st[c].dtype})  # the dtype the checkpoint resolved to

    if prompt is not None:
        cfgs = {c: s.sampler for c, s in st.items()}
        for c, model, clean, shifted, setting in lib.prompt_pairs(prompt, ckpts, cfgs, grid, load,
                                                                  st[ckpts[0]].chat):
            _render_pair(console, model, clean, shifted, title=f"{c} · {setting}")
        return
    out = out or default_out("shift", benchmark, ckpts)
    kw = dict(benchmark=benchmark, data_file=data_file, data_dir=data_dir, limit=limit, num_fewshot=num_fewshot,
              overwrite=overwrite, num_processes=num_processes, clean_from=clean_from or (), judge=judge, load=load,
              log=lambda s: err_console.print(s, highlight=False, soft_wrap=True), **load_opts, **preset_opts)
    if st[ckpts[0]].sampler.repair:  # each decode with and without the repair, paired (runs/shift_repair.py)
        both = run_shift_repair(ckpts, out, grid, sampler=sampler, **kw)
        res = both.base
        _print_repair_table(console if fmt == "table" else err_console, both.rows)
        err_console.print(f"with the repair: {both.repaired.out}; paired: {both.repaired.out / REPAIR_CSV}",
                          highlight=False)
    else:
        res = lib.run_shift(ckpts, out, grid, sampler=sampler, **kw)
    _print_table(console, res.rows, fmt)
    notes = console if fmt == "table" else err_console  # csv/json: stdout holds the rows only
    notes.print(f"wrote {res.written} new records; {res.out / lib.SHIFT_FILE}, {res.out / lib.SUMMARY_FILE}, "
                f"{lib.ACC_PNG}{', ' + lib.HEATMAP_PNG if res.heatmap else ''} in {res.out}", highlight=False)
    if show:
        _show_pairs(notes, res.records, grid, ckpts, load)


def _print_repair_table(console, rows: list[dict[str, Any]]) -> None:
    t = Table(title="repair: recovered = 1 - drop with / drop without [95% paired bootstrap CI]", box=None)
    for col in ("ckpt", "mode", "p", "at", "n", "drop without", "drop with", "recovered [CI]", "NFE x",
                "clean without", "clean with"):
        t.add_column(col, no_wrap=col == "recovered [CI]", overflow="fold")
    for r in rows:
        t.add_row(r["ckpt"], r["mode"], f"{r['fraction']:g}" if not isinstance(r["fraction"], str) else r["fraction"],
                  r["at"], str(r["n"]), f"{r['drop_without']:+.3f}", f"{r['drop_with']:+.3f}",
                  f"{r['recovered']:+.2f} [{r['recovered_lo']:+.2f},{r['recovered_hi']:+.2f}]",
                  f"{r['nfe_ratio']:.2f}", f"{r['acc_clean_without']:.3f}", f"{r['acc_clean_with']:.3f}")
    console.print(t)


def _show_pairs(console, records: list[dict[str, Any]], grid, ckpts: list[str], load) -> None:
    """--show: each checkpoint's first shifted record beside its clean twin."""
    by_id = {(r["ckpt"], r["id"]): r for r in records}
    first_spec = grid.specs()[0].setting
    for c in ckpts:
        s = next((r for r in records if r["ckpt"] == c and r["id"].endswith("@" + first_spec)), None)
        if s is not None:
            _render_pair(console, load(c), by_id[(c, s["intervention"]["clean_id"])], s, title=f"{c} · {s['id']}")


def _print_table(console, rows: list[dict[str, Any]], fmt: str = "table") -> None:
    """The summary; too wide for the terminal, each checkpoint's rows under its full name (cli/tables.py)."""
    def f2(x: float) -> str:
        return f"{x:.2f}"
    cols = [Col("ckpt", "ckpt"), Col("mode", "mode"), Col("p", "fraction", lambda x: f"{x:g}", "right"),
            Col("at", "at", justify="right"), Col("n", "n", justify="right"),
            Col("clean", "acc_clean", lambda x: f"{x:.3f}", "right"),
            Col("shifted", "acc_shifted", lambda x: f"{x:.3f}", "right"), Col("drop [CI]", "drop_ci", justify="right"),
            Col("flips", "flip_rate", f2, "right"), Col("edit", "edit_tokens", f2, "right"),
            Col("absorbed", "absorbed", f2, "right")]
    shown = [{**r, "drop_ci": f"{r['drop']:+.3f} [{r['drop_lo']:+.2f},{r['drop_hi']:+.2f}]"} for r in rows]
    print_table(console, "shift summary: drop = clean - shifted accuracy [95% paired bootstrap CI]", cols, shown,
                fmt=fmt, group="ckpt", records=rows,
                legend="p: share of gen-length edited; at: committed share when the edit fires; clean, shifted: "
                       "accuracy; flips: share whose verdict changed; edit: token edit distance / length; "
                       "absorbed: share whose shifted text equals the clean text")


# ----------------------------------------------------------------------------------------- --show
DIFF_STYLE = {"": None, "del": "bold white on red", "ins": "bold black on green"}


def _diff(a: str | list[str], b: str | list[str]) -> tuple[Text, Text]:
    """Two rich Texts, the parts not shared (render.diff_segments) highlighted: red in a, green in b."""
    left, right = diff_segments(a, b)
    return (Text.assemble(*[(x["text"], DIFF_STYLE[x["cls"]]) for x in left]),
            Text.assemble(*[(x["text"], DIFF_STYLE[x["cls"]]) for x in right]))


def _render_pair(console, model, clean: dict, shifted: dict, title: str) -> None:
    iv = shifted.get("intervention") or {}
    t = Table(title=title, show_lines=True)
    t.add_column("")
    t.add_column("clean")
    t.add_column("shifted")
    if iv.get("canvas_before") is not None:
        pts = set(iv.get("points") or [])
        before = Text()
        for q, tok in enumerate(model_glyphs(model, iv["canvas_before"])):
            before.append(tok, style="bold reverse" if q in pts else None)
        after = Text()
        for x, y, tok in zip(iv["canvas_before"], iv["canvas_after"], model_glyphs(model, iv["canvas_after"])):
            after.append(tok, style="bold reverse" if x != y else None)
        t.add_row(f"canvas after step {iv.get('fired_step')}:\nbefore | after {iv.get('mode')} at {sorted(pts)}",
                  before, after)
    elif shifted.get("intervention") is not None or "@" in shifted.get("id", ""):
        t.add_row("intervention", "", "did not fire (the trigger was never reached)")
    a, b = _diff(model_glyphs(model, clean["output_ids"]), model_glyphs(model, shifted["output_ids"]))
    t.add_row("final canvas", a, b)
    a, b = _diff(clean["text"], shifted["text"])
    t.add_row("text", a, b)
    if clean.get("correct") is not None or shifted.get("correct") is not None:
        t.add_row("correct", str(clean.get("correct")), str(shifted.get("correct")))
    console.print(t)
    console.print(f"{legend_text()}; highlighted: what differs", style="dim", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="shift")(sampler_options(shift))
