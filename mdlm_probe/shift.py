"""Shift sweeps: decode every sample clean once per checkpoint, then once per intervention setting, and
measure what the edit did against that paired clean output.

Records go to `shift.jsonl` (append + flush). The clean record of sample `synthetic/17` is
`synthetic/17@clean`; a shifted one is `synthetic/17@insert-p0.01-at0.5` with `intervention.clean_id`
pointing at its clean twin. A rerun skips (checkpoint, id) pairs already written; work is done in whole
batches of the full sample list, so a resumed batch decodes exactly as it would have uninterrupted.
Fraction 0 is not decoded again: it is the clean run (tests check a hooked p = 0 run reproduces it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import BadInput
from .interventions import MODES, Shift
from .stats import paired_bootstrap

SHIFT_FILE, SUMMARY_FILE = "shift.jsonl", "shift_summary.csv"
ACC_PNG, HEATMAP_PNG = "shift_accuracy.png", "shift_drop_heatmap.png"
OUTPUTS = (SHIFT_FILE, SUMMARY_FILE, ACC_PNG, HEATMAP_PNG, "judge.jsonl", "shards")


# ----------------------------------------------------------------------------------------- the grid
@dataclass
class ShiftGrid:
    modes: Sequence[str] = ("insert", "delete")
    fractions: Sequence[float] = (0.0, 0.01, 0.05)
    ats: Sequence[float] = (0.5,)
    at_step: int | None = None
    positions: Sequence[int] | None = None
    direction: str = "right"

    def specs(self) -> list[Shift]:
        """The settings to decode (fraction 0 excluded: that is the clean run)."""
        wheres = [None] if self.positions is not None else [f for f in self.fractions if f > 0]
        whens = [None] if self.at_step is not None else list(self.ats)
        return [Shift(mode=m, fraction=0.0 if f is None else f, at=a, at_step=self.at_step,
                      positions=None if self.positions is None else tuple(self.positions), direction=self.direction)
                for m in self.modes for f in wheres for a in whens]

    def validate(self, gen_length: int) -> "ShiftGrid":
        if not self.modes:
            raise BadInput("give at least one --mode")
        for m in self.modes:
            if m not in MODES:
                raise BadInput(f"unknown shift mode {m!r}; expected one of {', '.join(MODES)}")
        if len(set(self.modes)) != len(self.modes) or len(set(self.fractions)) != len(self.fractions):
            raise BadInput("--mode and --fractions must not repeat a value")
        if self.positions is None and not self.fractions:
            raise BadInput("give --fractions or --positions")
        if self.at_step is None and not self.ats:
            raise BadInput("give --at or --at-step")
        for f in self.fractions:
            Shift(mode=self.modes[0], fraction=f).validate()
        # A placeholder fraction keeps p = 0 grids (clean only) validated too.
        for m in self.modes:
            for a in ([None] if self.at_step is not None else self.ats):
                Shift(mode=m, at=a, at_step=self.at_step, direction=self.direction,
                      positions=None if self.positions is None else tuple(self.positions)).validate(gen_length)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in asdict(self).items()}


def clean_id(rec_id: str) -> str:
    return rec_id.split("@")[0] + "@clean"


def trigger(spec: Shift) -> str:
    """When an intervention fires: settings with the same trigger share the clean run up to it."""
    return f"step{spec.at_step}" if spec.at_step is not None else f"at{spec.at:g}"


# ----------------------------------------------------------------------------------------- running
def shifted_records(model, bench, samples, cfg, spec: Shift, *, ckpt_name: str, num_fewshot: int = 0,
                    chat: bool = False, resume=None) -> list[dict[str, Any]]:
    """Decode `samples` with one intervention; `intervention` holds what the hook did and the clean twin's id.

    `resume`: the clean run's fork at this intervention's trigger (see `trigger`): decoding continues from
    there, so only the part after the edit is computed; records equal a decode from scratch."""
    from .evaluate import build_records

    recs = build_records(model, bench, samples, cfg, ckpt_name=ckpt_name, num_fewshot=num_fewshot, chat=chat,
                         hooks=[spec], id_suffix="@" + spec.setting, resume=resume)
    for r in recs:
        info = (r.pop("hook_info", None) or {}).get(spec.key)
        r["intervention"] = {"setting": spec.setting, "mode": spec.mode,
                             "direction": spec.direction if spec.mode == "displace" else None,
                             "fraction": None if spec.positions is not None else spec.fraction,
                             "at": spec.at, "at_step": spec.at_step, "fixed_positions": spec.positions is not None,
                             "positions": None if spec.positions is None else list(spec.positions),
                             "fired": info is not None,
                             **(info or {}), "clean_id": clean_id(r["id"])}
    return recs


def run_sweep(ckpts: Sequence[str], bench, samples, cfgs: dict[str, Any], grid: ShiftGrid, out_dir: Path | str, *,
              load: Callable[[str], Any], num_fewshot: int = 0, chat: bool = False,
              log: Callable[[str], None] = lambda s: None, shard: tuple[int, int] | None = None,
              clean_from: dict[str, dict[str, dict]] | None = None, fork: bool = True) -> int:
    """Decode the clean run and every setting for every checkpoint; returns how many records were written.

    `cfgs[ckpt]` is that checkpoint's resolved SamplerConfig; `load(ckpt)` loads a model. The work is a list
    of units (checkpoint, batch of samples); `shard=(i, n)` does every n-th unit into its own shard file
    (what `num_processes` workers do). `clean_from[ckpt]` maps sample ids to eval records decoded with the
    same checkpoint and settings (see `reusable_clean`): those are the clean run, copied, not decoded again.
    A shifted run is identical to its clean twin until its trigger fires, so that part is decoded once per
    batch and trigger and each shifted run resumes from there (`fork=False` decodes every run whole; the
    tests check both give the same records). Records' `nfe` count the whole decode either way.
    """
    from .evaluate import build_records
    from .records import RecordWriter

    out_dir = Path(out_dir)
    path = out_dir / SHIFT_FILE if shard is None else shard_path(out_dir, shard)
    done = {(r.get("ckpt"), r["id"]) for r in _all_records(out_dir)}
    specs, written, unit = grid.specs(), 0, -1
    with RecordWriter(path) as writer:
        for ckpt in ckpts:
            cfg, model = cfgs[ckpt], None
            base = [f"{bench.name}/{s.native_id}" for s in samples]
            reuse = (clean_from or {}).get(ckpt) or {}
            eval_batches = defaultdict(set)  # eval batch index -> its sample ids (a copy needs the same batch)
            for i, r in reuse.items():
                eval_batches[(r.get("batch") or {}).get("index")].add(i)
            for start in range(0, len(samples), cfg.batch_size):
                unit += 1
                if shard is not None and unit % shard[1] != shard[0]:
                    continue
                chunk, ids = samples[start: start + cfg.batch_size], base[start: start + cfg.batch_size]
                jobs = [(s, setting) for s, setting in [(None, "clean"), *((s, s.setting) for s in specs)]
                        if not all((ckpt, f"{i}@{setting}") in done for i in ids)]
                # Every shifted run equals the clean run up to its trigger: decode that part once (forks),
                # then each shifted run resumes from its fork (KV-cached decoding is not forked).
                triggers = {trigger(s): s.due for s, _ in jobs if s is not None} if fork and cfg.cache == "none" else {}
                forks: dict[str, Any] = {}
                fork_args, forked = (dict(forks=triggers, forks_out=forks) if triggers else {}), not triggers
                for spec, setting in jobs:
                    if spec is None and eval_batches.get(start // cfg.batch_size) == set(ids):
                        recs = [{**reuse[i], "id": i + "@clean"} for i in ids]  # the eval decoded it already
                    else:
                        if model is None:
                            model = load(ckpt)
                        if spec is None:
                            recs = build_records(model, bench, chunk, cfg, ckpt_name=ckpt, num_fewshot=num_fewshot,
                                                 chat=chat, id_suffix="@clean", **fork_args)
                            forked = True
                        else:
                            if not forked:  # the clean run was copied or written before: decode up to the forks
                                build_records(model, bench, chunk, cfg, ckpt_name=ckpt, num_fewshot=num_fewshot,
                                              chat=chat, stop_after_forks=True, **fork_args)
                                forked = True
                            recs = shifted_records(model, bench, chunk, cfg, spec, ckpt_name=ckpt,
                                                   num_fewshot=num_fewshot, chat=chat,
                                                   resume=forks.get(trigger(spec)))
                    for r in recs:
                        if (ckpt, r["id"]) not in done:
                            writer.write(r)
                            done.add((ckpt, r["id"]))
                            written += 1
                log(f"{ckpt}: {min(start + cfg.batch_size, len(samples))}/{len(samples)} samples")
            del model
    return written


def reusable_clean(eval_dir: Path | str, ckpt_hash: str, cfg, bench_name: str, num_fewshot: int, chat: bool,
                   ) -> dict[str, dict]:
    """Records of an eval run that ARE this checkpoint's clean run: same weights (hash), benchmark, prompt
    format and resolved sampler at temperature 0 (at T = 0 a batch decodes the same whatever its seed). The
    sweep copies an eval batch only when it holds exactly the sweep's batch (same padding, same arithmetic;
    a test checks the copies equal fresh decodes). Anything else is decoded."""
    import json

    from .records import read_records

    eval_dir = Path(eval_dir)
    try:
        conf = json.loads((eval_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    same = (conf.get("checkpoint_hash") == ckpt_hash and conf.get("benchmark") == bench_name and cfg.temperature == 0
            and conf.get("num_fewshot") == num_fewshot and conf.get("sampler") == cfg.to_dict())
    if not same or not (eval_dir / "samples.jsonl").is_file():
        return {}
    # the prompt decoded must be the one shift would decode: no chat template unless asked, nothing cut
    want = {"num_fewshot": num_fewshot, "chat": bool(chat), "cut_tokens": 0}
    return {r["id"]: r for r in read_records(eval_dir / "samples.jsonl")[0] if r.get("prompt_info") == want}


# ----------------------------------------------------------------------------------------- several processes
SHARDS = "shards"


def shard_path(out_dir: Path, shard: tuple[int, int]) -> Path:
    return out_dir / SHARDS / f"shift-{shard[0]}-of-{shard[1]}.jsonl"


def _all_records(out_dir: Path) -> list[dict]:
    from .records import read_records

    files = [out_dir / SHIFT_FILE] + sorted((out_dir / SHARDS).glob("shift-*.jsonl"))
    return [r for f in files for r in read_records(f)[0]]


def run_sweep_parallel(k: int, job: dict[str, Any], out_dir: Path, log: Callable[[str], None] = lambda s: None) -> int:
    """Run `run_sweep` in `k` worker processes (one shard each; on CPU the cores are split between them),
    then merge their shard files into shift.jsonl. `job` holds run_sweep's inputs as JSON: ckpts, benchmark,
    data_file, n, cfgs (dicts), grid (dict), num_fewshot, chat, adapter, device, dtype, clean_from (paths)."""
    import time

    from .records import RecordWriter
    from .workers import cpu_env, run_workers

    n_before = len({(r.get("ckpt"), r["id"]) for r in _all_records(out_dir)})
    last = [time.time()]

    def tick() -> None:
        if time.time() - last[0] > 10:
            last[0] = time.time()
            log(f"{len(_all_records(out_dir))} records written ({k} workers)")

    run_workers("from mdlm_probe.shift import _worker; _worker()",
                [{**job, "out": str(out_dir), "shard": [i, k]} for i in range(k)], [cpu_env(k)] * k,
                tick=tick, label="shift worker")
    # Merge: every shard record not yet in shift.jsonl is appended, then the shard files go.
    from .records import read_records

    main = out_dir / SHIFT_FILE
    have = {(r.get("ckpt"), r["id"]) for r in read_records(main)[0]}
    with RecordWriter(main) as w:
        for f in sorted((out_dir / SHARDS).glob("shift-*.jsonl")):
            for r in read_records(f)[0]:
                if (r.get("ckpt"), r["id"]) not in have:
                    w.write(r)
                    have.add((r.get("ckpt"), r["id"]))
    for f in sorted((out_dir / SHARDS).glob("shift-*.jsonl")):
        f.unlink()
    return len(have) - n_before


def _worker() -> None:
    """Entry of one spawned shift worker: rebuilds run_sweep's inputs from the job and runs its shard."""
    from .adapters import load_model
    from .benchmarks import get_benchmark
    from .sampler import SamplerConfig
    from .workers import worker_main

    def work(job: dict[str, Any]) -> None:
        bench = get_benchmark(job["benchmark"], data_file=job.get("data_file"))
        samples = bench.load()[: job["n"]]
        cfgs = {c: SamplerConfig.from_dict(d) for c, d in job["cfgs"].items()}
        clean = {c: reusable_clean(d["dir"], d["hash"], cfgs[c], bench.name, job["num_fewshot"], job["chat"])
                 for c, d in (job.get("clean_from") or {}).items()}
        run_sweep(job["ckpts"], bench, samples, cfgs, ShiftGrid(**job["grid"]), Path(job["out"]),
                  load=lambda c: load_model(c, adapter=job.get("adapter"), device=job.get("device"), dtype=job.get("dtype")),
                  num_fewshot=job["num_fewshot"], chat=job["chat"], shard=tuple(job["shard"]), clean_from=clean)

    worker_main(work)


# ----------------------------------------------------------------------------------------- metrics
def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insert, delete, substitute; cost 1) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def norm_edit(a: Sequence, b: Sequence) -> float:
    """Levenshtein / the longer length: 0 identical, 1 nothing in common (0 for two empty sequences)."""
    n = max(len(a), len(b))
    return 0.0 if n == 0 else levenshtein(a, b) / n


def chrf(hyp: str, ref: str, order: int = 6, beta: float = 2.0) -> float:
    """Sentence chrF (Popović 2015) as sacreBLEU computes it: character 1..6-grams, whitespace removed,
    precision and recall averaged over the orders both sides have, then F-beta; 0..100.
    Two identical strings score 100 (sacreBLEU gives 0 for two empty ones)."""
    if hyp == ref:
        return 100.0
    h, r = "".join(hyp.split()), "".join(ref.split())
    prec = rec = 0.0
    eff = 0
    for n in range(1, order + 1):
        hg = _ngrams(h, n)
        rg = _ngrams(r, n)
        nh, nr = sum(hg.values()), sum(rg.values())
        if nh and nr:
            match = sum(min(c, rg[g]) for g, c in hg.items() if g in rg)
            prec += match / nh
            rec += match / nr
            eff += 1
    if eff == 0 or prec + rec == 0:
        return 0.0
    prec, rec = prec / eff, rec / eff
    return 100 * (1 + beta ** 2) * prec * rec / (beta ** 2 * prec + rec)


def _ngrams(s: str, n: int) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for i in range(len(s) - n + 1):
        out[s[i: i + n]] += 1
    return out


def pair_metrics(clean: dict[str, Any], shifted: dict[str, Any]) -> dict[str, Any]:
    """Per-sample comparison of a shifted record with its clean twin."""
    c, s = bool(clean.get("correct")), bool(shifted.get("correct"))
    return {
        "clean_correct": c, "shifted_correct": s,
        "broken": c and not s, "fixed": s and not c,
        "edit_tokens": norm_edit(clean["output_ids"], shifted["output_ids"]),
        "edit_text": norm_edit(clean["text"], shifted["text"]),
        "chrf": chrf(shifted["text"], clean["text"]),
        "absorbed": shifted["text"] == clean["text"],
    }


def _when(rec_int: dict[str, Any] | None, at: Any) -> str:
    step = (rec_int or {}).get("at_step")
    return f"step{step}" if step is not None else f"{at:g}"


def summarize(records: Iterable[dict[str, Any]], grid: ShiftGrid | None = None,
              judged: dict[tuple[str, str], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per checkpoint x mode x fraction x at: accuracy, paired drop with a 95% CI, flips, edits.

    With `grid` and 0 in its fractions, each (mode, at) also gets a fraction-0 row: the clean run against
    itself (drop 0 by construction). `judged[(ckpt, id)]` adds judge win rates.
    """
    recs = list(records)
    clean = {(r["ckpt"], r["id"]): r for r in recs if r["id"].endswith("@clean")}
    groups: dict[tuple, list[tuple[dict, dict]]] = defaultdict(list)
    order: list[str] = []
    for r in recs:
        iv = r.get("intervention")
        if not iv:
            if r["ckpt"] not in order:
                order.append(r["ckpt"])
            continue
        c = clean.get((r["ckpt"], iv["clean_id"]))
        if c is None:
            continue  # its clean twin is missing (a killed run): unpaired, left out
        mode = iv["mode"] + ("-left" if iv["mode"] == "displace" and iv.get("direction") == "left" else "")
        where = iv["fraction"] if not iv.get("positions") else "pos:" + "_".join(map(str, iv["positions"]))
        groups[(r["ckpt"], mode, where, _when(iv, iv.get("at")))].append((c, r))
    if grid is not None and 0 in [float(f) for f in grid.fractions] and grid.positions is None:
        by_ckpt: dict[str, list[dict]] = defaultdict(list)
        for (ck, _), c in clean.items():
            by_ckpt[ck].append(c)
        modes = [m + ("-left" if m == "displace" and grid.direction == "left" else "") for m in grid.modes]
        whens = [f"step{grid.at_step}"] if grid.at_step is not None else [f"{a:g}" for a in grid.ats]
        for ck, cs in by_ckpt.items():
            for m in modes:
                for w in whens:
                    groups[(ck, m, 0.0, w)] = [(c, c) for c in cs]
    rows = []
    rank = {ck: i for i, ck in enumerate(order)}
    for key in sorted(groups, key=lambda k: (rank.get(k[0], 99), k[0], k[1], str(k[2]), k[3])):
        ckpt, mode, where, when = key
        pairs = groups[key]
        ms = [pair_metrics(c, s) for c, s in pairs]
        a = [m["clean_correct"] for m in ms]
        b = [m["shifted_correct"] for m in ms]
        drop, lo, hi = paired_bootstrap(b, a)  # mean(clean - shifted)
        row = {"ckpt": ckpt, "mode": mode, "fraction": where, "at": when, "n": len(ms),
               "fired": float(np.mean([bool((s.get("intervention") or {}).get("fired", True)) for _, s in pairs])),
               "acc_clean": float(np.mean(a)), "acc_shifted": float(np.mean(b)),
               "drop": drop, "drop_lo": lo, "drop_hi": hi,
               "broken_rate": float(np.mean([m["broken"] for m in ms])),
               "fixed_rate": float(np.mean([m["fixed"] for m in ms])),
               "flip_rate": float(np.mean([m["broken"] or m["fixed"] for m in ms])),
               "edit_tokens": float(np.mean([m["edit_tokens"] for m in ms])),
               "edit_text": float(np.mean([m["edit_text"] for m in ms])),
               "chrf": float(np.mean([m["chrf"] for m in ms])),
               "absorbed": float(np.mean([m["absorbed"] for m in ms]))}
        if judged is not None:
            row.update(judge_summary([judged.get((ckpt, s["id"])) for _, s in pairs if s.get("intervention")]))
        rows.append(row)
    return rows


def judge_summary(js: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Win rate of shifted over clean (1 win, 0.5 tie, 0 loss, averaged over both orders) with a 95% CI."""
    scores = [j["score"] for j in js if j and j.get("score") is not None]
    errors = sum(1 for j in js if j and j.get("judge_error"))
    if not scores:
        return {"judge_n": 0, "judge_errors": errors, "win_rate": math.nan, "win_lo": math.nan, "win_hi": math.nan}
    m, lo, hi = paired_bootstrap([0.0] * len(scores), scores)
    return {"judge_n": len(scores), "judge_errors": errors, "win_rate": m, "win_lo": lo, "win_hi": hi}


def write_summary_csv(rows: list[dict[str, Any]], path: Path | str) -> None:
    import csv

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols or ["ckpt"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})


# ----------------------------------------------------------------------------------------- plots
def plot_accuracy(rows: list[dict[str, Any]], path: Path | str) -> None:
    """Shifted accuracy vs fraction: one panel per mode, one line per checkpoint x at, with the drop's CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not isinstance(r["fraction"], str)]
    modes = sorted({r["mode"] for r in rows}) or ["none"]
    fig, axes = plt.subplots(1, len(modes), figsize=(4.5 * len(modes), 3.6), squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], modes):
        lines = sorted({(r["ckpt"], r["at"]) for r in rows if r["mode"] == mode})
        for ckpt, at in lines:
            pts = sorted((r["fraction"], r["acc_shifted"], r["acc_clean"] - r["drop_hi"], r["acc_clean"] - r["drop_lo"])
                         for r in rows if r["mode"] == mode and r["ckpt"] == ckpt and r["at"] == at)
            f, acc, lo, hi = map(np.array, zip(*pts))
            (line,) = ax.plot(f, acc, marker="o", label=f"{ckpt} @ {at}")
            ax.fill_between(f, lo, hi, alpha=0.15, color=line.get_color())
        ax.set_title(mode)
        ax.set_xlabel("fraction of positions shifted")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (shaded: 95% CI of the drop)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def at_key(when: Any) -> tuple[int, float, str]:
    """Sort key for `at` labels: committed fractions ("0.5") numerically, then step triggers ("step3")."""
    s = str(when)
    try:
        return (0, float(s), s)
    except ValueError:
        digits = "".join(ch for ch in s if ch.isdigit())
        return (1, float(digits or 0), s)


def drop_heatmap_figure(rows: list[dict[str, Any]]):
    """Paired accuracy drop over fraction x at: one panel per checkpoint (rows) and mode (columns).

    `rows` are `summarize` rows (keys ckpt, mode, fraction, at, drop); fraction 0 and positional rows are
    left out. Returns the matplotlib figure, or None when nothing is left to draw.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not isinstance(r["fraction"], str) and float(r["fraction"]) > 0
            and r["drop"] is not None and not math.isnan(r["drop"])]
    if not rows:
        return None
    ckpts = list(dict.fromkeys(r["ckpt"] for r in rows))
    modes = sorted({r["mode"] for r in rows})
    fr = sorted({float(r["fraction"]) for r in rows})
    ats = sorted({r["at"] for r in rows}, key=at_key)
    fig, axes = plt.subplots(len(ckpts), len(modes), squeeze=False, constrained_layout=True,
                             figsize=(1.5 + 1.6 * max(len(ats), 2) * len(modes), 0.6 + 0.9 * max(len(fr), 2) * len(ckpts)))
    vmax = max([abs(r["drop"]) for r in rows] + [0.05])  # symmetric colours: red = accuracy lost
    for i, ckpt in enumerate(ckpts):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            grid = np.full((len(fr), len(ats)), np.nan)  # (fractions, ats)
            for r in rows:
                if r["ckpt"] == ckpt and r["mode"] == mode:
                    grid[fr.index(float(r["fraction"])), ats.index(r["at"])] = r["drop"]
            im = ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", origin="lower")
            for y in range(len(fr)):
                for x in range(len(ats)):
                    if not np.isnan(grid[y, x]):
                        ax.text(x, y, f"{grid[y, x]:+.2f}", ha="center", va="center", fontsize=7,
                                color="white" if abs(grid[y, x]) > 0.6 * vmax else "black")
            ax.set_xticks(range(len(ats)), [str(a) for a in ats])
            ax.set_yticks(range(len(fr)), [f"{f:g}" for f in fr])
            ax.set_title(f"{ckpt} · {mode}", fontsize=9)
            if i == len(ckpts) - 1:
                ax.set_xlabel("at (committed fraction or step)")
            if j == 0:
                ax.set_ylabel("fraction")
    fig.colorbar(im, ax=axes, shrink=0.8, label="accuracy drop (clean - shifted)")
    return fig


def plot_drop_heatmap(rows: list[dict[str, Any]], path: Path | str) -> bool:
    """Write the drop heatmap to `path`; False (and no file, a stale one removed) when no fraction > 0 ran."""
    fig = drop_heatmap_figure(rows)
    if fig is None:
        Path(path).unlink(missing_ok=True)
        return False
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
