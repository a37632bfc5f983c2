"""The one-command demo: eval, a shift sweep, failure mining, a paired comparison and the HTML report.

`run_demo(DemoConfig(...), out)` chains the other commands' library functions on the shipped checkpoints:

    eval/synthetic-<ckpt>/   held-out synthetic problems          (mdlm_probe.runs.evaluate.run_eval)
    eval/gsm8k-<ckpt>/       a GSM8K slice, when ../shared/data has it
    shift/                   insert/delete at a few fractions and points (mdlm_probe.runs.shift.run_shift)
    errors.jsonl + errors_summary.csv inside each run           (mdlm_probe.runs.miners.mine_run)
    compare/                 tiny-ce-ft against the CTC checkpoints (mdlm_probe.runs.compare.write_compare)
    report/index.html        everything above                      (mdlm_probe.report.build_report)

It calls library functions only (never mdlm_probe.cli): the command passes `show`, which prints
the errors and compare results as those commands do.

Every step is resumable: eval and shift skip records already written, the rest is cheap and redone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mdlm_probe.adapters import load_model
from mdlm_probe.core.checkpoints import resolve, shipped_names
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs import miners, shift
from mdlm_probe.runs.compare import write_compare
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.decoding import resolve_sampler
from mdlm_probe.tasks.benchmarks import DATA_ENV
from mdlm_probe.tasks.benchmarks.gsm8k import GSM8K
from .page import build_report

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
    """The GSM8K test file under $MDLM_PROBE_DATA, else in shared/data beside the checkout (as the tests lay it out)."""
    roots = [os.environ.get(DATA_ENV)]
    roots += [str(p / "shared" / "data") for p in (Path.cwd().parent, Path(__file__).resolve().parents[3])]
    return next((f for r in roots if r and (f := GSM8K.local_file(r))), None)


def _slug(ckpt: str) -> str:
    return Path(str(ckpt)).name or str(ckpt).replace("/", "_")


def check_ckpts(ckpts: Sequence[str]) -> None:
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


def run_demo(cfg: DemoConfig, out: Path | str, log: Callable[[str], None] = print,
             progress: bool | str = False, show: Callable[[str, Any], None] = lambda what, result: None,
             ) -> dict[str, Any]:
    """Run every step into `out`; returns {"report": path, "steps": [(name, seconds)], "seconds": total}.

    `show("errors", [MinedRun, ...])` and `show("compare", (result, out))` get those steps' results as
    they finish (the command prints them)."""
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
    step("errors · failure patterns in every run", lambda: show("errors", _errors(runs)))

    # 4. compare tiny-ce-ft (or the first checkpoint) with the others on the same problems
    compare_dir = out / "compare"
    if len(eval_dirs["synthetic"]) > 1:
        step(f"compare · {ckpts[0]} vs {', '.join(ckpts[1:])}",
             lambda: show("compare", _compare(eval_dirs["synthetic"], compare_dir)))

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


def _eval(ckpt: str, bench: str, out: Path, limit: int, sampler: dict[str, Any], model, progress: bool | str,
          data_file: Path | None = None, num_processes: int = 1) -> dict[str, Any]:
    # one batch per worker at least, or the workers' start-up costs more than it saves
    k = max(1, min(num_processes, limit // max(1, resolve_sampler(sampler, model).batch_size)))
    # chat=None: each checkpoint's sidecar says whether it was trained on chat prompts, else the default
    return run_eval(ckpt, bench, out, sampler_overrides=sampler, limit=limit, data_file=data_file, model=model,
                    progress=progress, num_processes=k, chat=None)


def _shift(ckpts: list[str], out: Path, cfg: DemoConfig, model, log) -> list[dict[str, Any]]:
    """`mdlm-probe shift --ckpt ... --mode ... --fractions ... --at ... --limit N --clean-from EVAL...`.
    Where an eval batch holds exactly a sweep batch (same problems and settings), its records are the clean run."""
    grid = shift.ShiftGrid(modes=list(cfg.modes), fractions=list(cfg.fractions), ats=list(cfg.ats))
    evals = [d for c in ckpts if (d := out.parent / "eval" / f"synthetic-{_slug(c)}").is_dir()]
    res = shift.run_shift(ckpts, out, grid, benchmark="synthetic", limit=cfg.n_shift, num_fewshot=0,
                          chat=None, sampler=cfg.sampler, num_processes=cfg.num_processes, clean_from=evals,
                          load=model, log=lambda s: log("    " + s))
    return res.rows


def _errors(run_dirs: list[Path]) -> list[miners.MinedRun]:
    """`mdlm-probe errors RUN_DIR...`: errors.jsonl and errors_summary.csv in each run."""
    return [miners.mine_run(d, list(miners.DETECTORS)) for d in run_dirs]


def _compare(dirs: list[Path], out: Path) -> tuple[dict[str, Any], Path]:
    """`mdlm-probe compare A B ... --force --out DIR` (each checkpoint's sidecar may set other sampler settings)."""
    return write_compare(dirs, out, force=True, patterns=list(miners.DETECTORS), seed=0)


def _report(runs: list[Path], out: Path, ckpts: list[str]) -> Path:
    return build_report(runs, out, title=f"mdlm-probe demo: {', '.join(ckpts)}")
