"""The one-command demo: eval, a shift sweep, failure mining, a paired comparison and the HTML report.

`run_demo(DemoConfig(...), out)` chains the other commands' library functions on the shipped checkpoints:

    eval/synthetic-<ckpt>/   held-out synthetic problems          (mdlm_probe.evaluate.run_eval)
    eval/gsm8k-<ckpt>/       a GSM8K slice, when ../shared/data has it
    shift/                   insert/delete at a few fractions and points (mdlm_probe.shift.run_sweep)
    errors.jsonl + errors_summary.csv inside each run           (mdlm_probe.miners)
    compare/                 tiny-ce-ft against the CTC checkpoints (mdlm_probe.compare)
    report/index.html        everything above                      (mdlm_probe.report)

Every step is resumable: eval and shift skip records already written, the rest is cheap and redone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import BadInput

DEFAULT_CKPTS = ("tiny-ce-ft", "tiny-ctc", "tiny-ctc-surface")


@dataclass
class DemoConfig:
    ckpts: Sequence[str] = DEFAULT_CKPTS
    n_eval: int = 128  # held-out synthetic problems per checkpoint
    n_shift: int = 32  # problems in the shift sweep (each decoded 1 + modes x fractions x ats times)
    n_gsm8k: int = 5  # GSM8K slice per checkpoint (0 = none; long prompts: the costliest decodes here)
    modes: Sequence[str] = ("insert", "delete")
    fractions: Sequence[float] = (0.0, 0.01, 0.05)
    ats: Sequence[float] = (0.25, 0.75)
    sampler: dict[str, Any] = field(default_factory=dict)  # overrides (e.g. gen_length for tests)
    gsm8k_file: Path | None = None  # None: look for ../shared/data/gsm8k/test.jsonl
    num_processes: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))  # eval and shift workers

    @classmethod
    def quick(cls, **kw: Any) -> "DemoConfig":
        """A minute or two on 2 CPU cores: a handful of problems, one point in time."""
        return cls(**{"n_eval": 16, "n_shift": 8, "n_gsm8k": 0, "fractions": (0.0, 0.05), "ats": (0.5,),
                      "num_processes": 1, **kw})


def find_gsm8k() -> Path | None:
    """The GSM8K test file beside the checkout (../shared/data), or $MDLM_PROBE_DATA/gsm8k/test.jsonl."""
    roots = [os.environ.get("MDLM_PROBE_DATA")]
    roots += [str(p / "shared" / "data") for p in (Path.cwd().parent, Path(__file__).resolve().parents[2])]
    for r in roots:
        if r and (Path(r) / "gsm8k" / "test.jsonl").is_file():
            return Path(r) / "gsm8k" / "test.jsonl"
    return None


def _slug(ckpt: str) -> str:
    return Path(str(ckpt)).name or str(ckpt).replace("/", "_")


def check_ckpts(ckpts: Sequence[str]) -> None:
    from .checkpoints import resolve, shipped_names

    if not ckpts:
        raise BadInput("give at least one --ckpt")
    for c in ckpts:
        try:
            resolve(c)
        except BadInput:
            raise BadInput(f"no checkpoint {c!r} (shipped: {', '.join(shipped_names()) or 'none'}); "
                           f"pass --ckpt NAME_OR_FOLDER") from None
        if isinstance(resolve(c), str):
            raise BadInput(f"{c!r} is a Hub name; the demo runs offline on local checkpoints")


def run_demo(cfg: DemoConfig, out: Path | str, log: Callable[[str], None] = print, progress: bool = False,
             ) -> dict[str, Any]:
    """Run every step into `out`; returns {"report": path, "steps": [(name, seconds)], "seconds": total}."""
    from .adapters import load_model

    out = Path(out)
    ckpts = list(dict.fromkeys(cfg.ckpts))
    check_ckpts(ckpts)
    t_all = time.perf_counter()
    steps: list[tuple[str, float]] = []
    models: dict[str, Any] = {}

    def model(c: str):
        if c not in models:
            models[c] = load_model(c)
        return models[c]

    def step(name: str, fn: Callable[[], Any]) -> Any:
        log(f"[{len(steps) + 1}] {name} ...")
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
        steps.append((name, dt))
        log(f"    done in {dt:.1f} s (total {time.perf_counter() - t_all:.1f} s)")
        return res

    # 1. eval: synthetic held-out split (+ a GSM8K slice when the data is here)
    eval_dirs: dict[str, list[Path]] = {"synthetic": [], "gsm8k": []}
    gsm8k = cfg.gsm8k_file or (find_gsm8k() if cfg.n_gsm8k > 0 else None)
    for c in ckpts:
        d = out / "eval" / f"synthetic-{_slug(c)}"
        s = step(f"eval synthetic · {c} · {cfg.n_eval} problems",
                 lambda: _eval(c, "synthetic", d, cfg.n_eval, cfg.sampler, model(c), progress,
                               num_processes=cfg.num_processes))
        log(f"    accuracy {_acc(s)}")
        eval_dirs["synthetic"].append(d)
    if gsm8k is not None and cfg.n_gsm8k > 0:
        for c in ckpts:
            d = out / "eval" / f"gsm8k-{_slug(c)}"
            s = step(f"eval gsm8k · {c} · {cfg.n_gsm8k} problems ({gsm8k})",
                     lambda: _eval(c, "gsm8k", d, cfg.n_gsm8k, cfg.sampler, model(c), progress, data_file=gsm8k))
            log(f"    accuracy {_acc(s)}")
            eval_dirs["gsm8k"].append(d)
    elif cfg.n_gsm8k > 0:
        log("    (no GSM8K slice: ../shared/data/gsm8k/test.jsonl not found)")

    # 2. shift sweep on the synthetic problems
    shift_dir = out / "shift"
    rows = step(f"shift · {', '.join(cfg.modes)} · fractions {', '.join(f'{f:g}' for f in cfg.fractions)} · "
                f"at {', '.join(f'{a:g}' for a in cfg.ats)} · {cfg.n_shift} problems",
                lambda: _shift(ckpts, shift_dir, cfg, model, log))
    for r in rows:
        if r["fraction"] and r["fraction"] > 0:
            log(f"    {r['ckpt']:<18} {r['mode']:<7} p={r['fraction']:<5g} at {r['at']:<5} "
                f"acc {r['acc_clean']:.3f} -> {r['acc_shifted']:.3f} (drop {r['drop']:+.3f} "
                f"[{r['drop_lo']:+.3f}, {r['drop_hi']:+.3f}])")

    # 3. failure patterns in every run
    runs = eval_dirs["synthetic"] + eval_dirs["gsm8k"] + [shift_dir]
    step("errors · failure patterns in every run", lambda: _errors(runs))

    # 4. compare tiny-ce-ft (or the first checkpoint) with the others on the same problems
    compare_dir = out / "compare"
    if len(eval_dirs["synthetic"]) > 1:
        step(f"compare · {ckpts[0]} vs {', '.join(ckpts[1:])}", lambda: _compare(eval_dirs["synthetic"], compare_dir))

    # 5. the report
    extra = [compare_dir] if (compare_dir / "compare.json").is_file() else []
    report = step("report", lambda: _report(runs + extra, out / "report", ckpts))
    total = time.perf_counter() - t_all
    return {"report": report, "steps": steps, "seconds": total}


def _acc(summary: dict[str, Any]) -> str:
    if summary.get("accuracy") is None:
        return "n/a"
    lo, hi = summary["ci95"]
    return f"{summary['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] (n={summary['n']})"


def _eval(ckpt: str, bench: str, out: Path, limit: int, sampler: dict[str, Any], model, progress: bool,
          data_file: Path | None = None, num_processes: int = 1) -> dict[str, Any]:
    from .evaluate import run_eval

    # one batch per worker at least, or the workers' start-up costs more than it saves
    k = max(1, min(num_processes, limit // max(1, resolve_batch(model, sampler))))
    return run_eval(ckpt, bench, out, sampler_overrides=sampler, limit=limit, data_file=data_file, model=model,
                    progress=progress, num_processes=k)


def resolve_batch(model, sampler: dict[str, Any]) -> int:
    from .sampler import resolve_sampler

    return resolve_sampler(sampler, model).batch_size


def _shift(ckpts: list[str], out: Path, cfg: DemoConfig, model, log) -> list[dict[str, Any]]:
    """What `mdlm-probe shift --ckpt ... --mode ... --fractions ... --at ... --limit N` does, as a library call."""
    from . import shift as lib
    from .benchmarks import get_benchmark
    from .checkpoints import checkpoint_hash, resolve
    from .records import read_records
    from .rundir import prepare_run_dir
    from .sampler import resolve_sampler

    grid = lib.ShiftGrid(modes=list(cfg.modes), fractions=list(cfg.fractions), ats=list(cfg.ats))
    cfgs = {c: resolve_sampler(cfg.sampler, model(c)) for c in ckpts}
    for c in ckpts:
        grid.validate(cfgs[c].gen_length)
    bench = get_benchmark("synthetic")
    samples = bench.load()[: cfg.n_shift]
    paths = {c: resolve(c) for c in ckpts}
    config = {
        "command": "shift", "benchmark": bench.name, "data_source": bench.data_source(), "limit": cfg.n_shift,
        "n": len(samples), "num_fewshot": 0, "chat": False, "adapter": None, "dtype": None,
        "checkpoints": [{"name": c, "path": str(paths[c]), "hash": checkpoint_hash(paths[c]),
                         "sampler": cfgs[c].to_dict()} for c in ckpts],
        "grid": grid.to_dict(), "settings": [s.setting for s in grid.specs()],
    }
    out = prepare_run_dir(out, config, outputs=lib.OUTPUTS)
    # Where an eval batch holds exactly a sweep batch (same problems and settings), its records are the clean run.
    clean = {c: {"dir": str(out.parent / "eval" / f"synthetic-{_slug(c)}"), "hash": checkpoint_hash(paths[c])}
             for c in ckpts}
    if cfg.num_processes > 1:
        job = {"ckpts": ckpts, "benchmark": bench.name, "data_file": None, "n": len(samples),
               "cfgs": {c: cfgs[c].to_dict() for c in ckpts}, "grid": grid.to_dict(), "num_fewshot": 0,
               "chat": False, "adapter": None, "device": None, "dtype": None, "clean_from": clean}
        lib.run_sweep_parallel(cfg.num_processes, job, out, log=lambda s: log("    " + s))
    else:
        reuse = {c: lib.reusable_clean(v["dir"], v["hash"], cfgs[c], bench.name, 0, False) for c, v in clean.items()}
        lib.run_sweep(ckpts, bench, samples, cfgs, grid, out, load=model, log=lambda s: log("    " + s),
                      clean_from=reuse)
    recs = read_records(out / lib.SHIFT_FILE)[0]
    rows = lib.summarize(recs, grid)
    lib.write_summary_csv(rows, out / lib.SUMMARY_FILE)
    lib.plot_accuracy(rows, out / lib.ACC_PNG)
    lib.plot_drop_heatmap(rows, out / lib.HEATMAP_PNG)
    return rows


def _errors(run_dirs: list[Path]) -> None:
    """`mdlm-probe errors RUN_DIR...`: errors.jsonl and errors_summary.csv in each run, a table printed."""
    from .commands.errors import errors

    errors(run_dirs=list(run_dirs), pattern="all", only_wrong=False, show=1)


def _compare(dirs: list[Path], out: Path) -> None:
    """`mdlm-probe compare A B ... --force --out DIR` (each checkpoint's sidecar may set other sampler settings)."""
    from .commands.compare import compare

    compare(run_dirs=list(dirs), force=True, out=out, pattern="all", seed=0, show_ids=5)


def _report(runs: list[Path], out: Path, ckpts: list[str]) -> Path:
    from .report import build_report

    return build_report(runs, out, title=f"mdlm-probe demo: {', '.join(ckpts)}")
