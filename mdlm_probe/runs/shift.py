"""Shift sweeps: decode every sample clean once per checkpoint, then once per intervention setting, and
measure what the edit did against that paired clean output.

Records go to `shift.jsonl` (append + flush). The clean record of sample `synthetic/17` is
`synthetic/17@clean`; a shifted one is `synthetic/17@insert-p0.01-at0.5` with `intervention.clean_id`
pointing at its clean twin. A rerun skips (checkpoint, id) pairs already written; work is done in whole
batches of the full sample list, so a resumed batch decodes exactly as it would have uninterrupted.
Fraction 0 is not decoded again: it is the clean run (tests check a hooked p = 0 run reproduces it).
"""

from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from mdlm_probe.adapters import load_model
from mdlm_probe.core import rundir
from mdlm_probe.core.cards import build_card
from mdlm_probe.core.checkpoints import checkpoint_hash
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import Progress, starting_note
from mdlm_probe.core.records import RecordWriter, make_record, read_records
from mdlm_probe.core.stats import paired_bootstrap
from mdlm_probe.core.text_metrics import chrf, levenshtein, norm_edit, pair_metrics  # noqa: F401 (metrics re-exported)
from mdlm_probe.core.workers import run_shards, worker_main
from mdlm_probe.decoding import SamplerConfig, TakeForks, generate
from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.tasks.interventions import MODES, Shift, trigger_label, when_label
from mdlm_probe.tasks.judge import Judge, judge_run, read_judged
from mdlm_probe.tasks.presets import get_preset
from .evaluate import build_records, note_prompts_cut
from .protocol import Protocol, applied_protocol, protocol_of
from .settings import Settings, resolve_settings
from .figures import at_key, drop_heatmap_figure, plot_accuracy, plot_drop_heatmap  # noqa: F401 (re-exported)

SHIFT_FILE, SUMMARY_FILE = rundir.SHIFT, "shift_summary.csv"
ACC_PNG, HEATMAP_PNG = "shift_accuracy.png", "shift_drop_heatmap.png"
OUTPUTS = (SHIFT_FILE, SUMMARY_FILE, ACC_PNG, HEATMAP_PNG, "judge.jsonl", rundir.SHARDS)


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
    return trigger_label(spec.at, spec.at_step)


# ----------------------------------------------------------------------------------------- labels
# The one place that names an intervention: its record field and the labels of summary rows. (The record
# id suffix is `Shift.setting` in interventions.py, which this layer builds on.)
def intervention_field(spec: Shift, info: dict[str, Any] | None, rec_id: str) -> dict[str, Any]:
    """A shifted record's `intervention`: the setting, what the hook did (`info`, None if it never fired)
    and the clean twin's id."""
    return {"setting": spec.setting, "mode": spec.mode,
            "direction": spec.direction if spec.mode == "displace" else None,
            "fraction": None if spec.positions is not None else spec.fraction,
            "at": spec.at, "at_step": spec.at_step, "fixed_positions": spec.positions is not None,
            "positions": None if spec.positions is None else list(spec.positions),
            "fired": info is not None, **(info or {}), "clean_id": clean_id(rec_id)}


def mode_label(mode: str, direction: str | None) -> str:
    """"insert", ..., "displace" (rightwards) or "displace-left"."""
    return mode + ("-left" if mode == "displace" and direction == "left" else "")


def where_label(iv: dict[str, Any]) -> float | str:
    """The fraction shifted, or "pos:12_40" for fixed positions."""
    return iv["fraction"] if not iv.get("positions") else "pos:" + "_".join(map(str, iv["positions"]))


# ----------------------------------------------------------------------------------------- running
def shifted_records(model, bench, samples, cfg, spec: Shift, *, ckpt_name: str, num_fewshot: int = 0,
                    chat: bool = False, fork=None, protocol: Protocol | None = None) -> list[dict[str, Any]]:
    """Decode `samples` with one intervention; `intervention` holds what the hook did and the clean twin's id.

    `fork`: the clean run's fork at this intervention's trigger (see `trigger`): decoding continues from
    there, so only the part after the edit is computed; records equal a decode from scratch."""
    recs = build_records(model, bench, samples, cfg, ckpt_name=ckpt_name, num_fewshot=num_fewshot, chat=chat,
                         hooks=[spec], id_suffix="@" + spec.setting, state=fork, protocol=protocol)
    for r in recs:
        info = r.pop("hook_info", None) or {}
        r["intervention"] = intervention_field(spec, info.pop(spec.key, None), r["id"])
        if info:  # what else recorded (a repair's log) stays
            r["hook_info"] = info
    return recs


def run_sweep(ckpts: Sequence[str], bench, samples, cfgs: dict[str, Any], grid: ShiftGrid, out_dir: Path | str, *,
              load: Callable[[str], Any], num_fewshot: int = 0, chat: bool = False,
              log: Callable[[str], None] = lambda s: None, shard: tuple[int, int] | None = None,
              clean_from: dict[str, dict[str, dict]] | None = None, fork: bool = True,
              protocol: Protocol | None = None) -> int:
    """Decode the clean run and every setting for every checkpoint; returns how many records were written.

    `cfgs[ckpt]` is that checkpoint's resolved SamplerConfig; `load(ckpt)` loads a model. The work is a list
    of units (checkpoint, batch of samples); `shard=(i, n)` does every n-th unit into its own shard file
    (what `num_processes` workers do). `clean_from[ckpt]` maps sample ids to eval records decoded with the
    same checkpoint and settings (see `reusable_clean`): those are the clean run, copied, not decoded again.
    A shifted run is identical to its clean twin until its trigger fires, so that part is decoded once per
    batch and trigger and each shifted run resumes from there (`fork=False` decodes every run whole; the
    tests check both give the same records). Records' `nfe` count the whole decode either way.
    """
    out_dir = Path(out_dir)
    path = out_dir / SHIFT_FILE if shard is None else rundir.shard_path(out_dir, SHIFT_FILE, shard)
    done = {(r.get("ckpt"), r["id"]) for r in rundir.read_run_records(out_dir, SHIFT_FILE)[0]}
    specs, written, unit = grid.specs(), 0, -1
    # Progress counts this process's records: every unit's, or its shard's.
    settings = ["clean"] + [s.setting for s in specs]
    units = [(c, start) for c in ckpts for start in range(0, len(samples), cfgs[c].batch_size)]
    keys = [(c, f"{bench.name}/{s.native_id}@{st}") for k, (c, start) in enumerate(units)
            if shard is None or k % shard[1] == shard[0] for s in samples[start: start + cfgs[c].batch_size]
            for st in settings]
    bar = Progress("shift", len(keys), sum(k in done for k in keys), mode="lines", unit="records", log=log)
    with bar, RecordWriter(path) as writer:
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
                forks = TakeForks(triggers)  # first among the clean run's hooks: the state before any edit
                forked = not triggers
                for spec, setting in jobs:
                    if spec is None and eval_batches.get(start // cfg.batch_size) == set(ids):
                        # the eval decoded it already; labelled as this sweep labels the checkpoint (a folder
                        # given here may be named by its sidecar in the eval's records)
                        recs = [{**reuse[i], "id": i + "@clean", "ckpt": ckpt} for i in ids]
                    else:
                        if model is None:
                            model = load(ckpt)
                        if spec is None:
                            recs = build_records(model, bench, chunk, cfg, ckpt_name=ckpt, num_fewshot=num_fewshot,
                                                 chat=chat, id_suffix="@clean", hooks=[forks] if triggers else (),
                                                 protocol=protocol)
                            forked = True
                        else:
                            if not forked:  # the clean run was copied or written before: decode up to the forks
                                forks.halt = True
                                build_records(model, bench, chunk, cfg, ckpt_name=ckpt, num_fewshot=num_fewshot,
                                              chat=chat, hooks=[forks], protocol=protocol)
                                forked = True
                            recs = shifted_records(model, bench, chunk, cfg, spec, ckpt_name=ckpt,
                                                   num_fewshot=num_fewshot, chat=chat,
                                                   fork=forks.taken.get(trigger(spec)), protocol=protocol)
                    for r in recs:
                        if (ckpt, r["id"]) not in done:
                            writer.write(r)
                            done.add((ckpt, r["id"]))
                            written += 1
                            bar.done += 1
                    bar.update(bar.done, f"{ckpt}, samples {start + 1}-{start + len(ids)} of {len(samples)}")
            del model
    return written


def cut_prompts(recs: Sequence[dict[str, Any]]) -> int:
    """How many (checkpoint, sample) prompts a preset's protocol cut (its "left:N" truncation)."""
    return len({(r.get("ckpt"), r["id"].split("@")[0]) for r in recs
                if (r.get("prompt_info") or {}).get("cut_tokens")})


def reusable_clean(eval_dir: Path | str, ckpt_hash: str, cfg, bench_name: str, num_fewshot: int, chat: bool,
                   protocol: Protocol | None = None) -> dict[str, dict]:
    """Records of an eval run that ARE this checkpoint's clean run: same weights (hash), benchmark, prompt
    format and resolved sampler at temperature 0 (at T = 0 a batch decodes the same whatever its seed). The
    sweep copies an eval batch only when it holds exactly the sweep's batch (same padding, same arithmetic;
    a test checks the copies equal fresh decodes). Anything else is decoded."""
    eval_dir = Path(eval_dir)
    try:
        conf = rundir.load_config(eval_dir)
    except BadInput:
        return {}
    same = (conf.get("checkpoint_hash") == ckpt_hash and conf.get("benchmark") == bench_name and cfg.temperature == 0
            and conf.get("num_fewshot") == num_fewshot and conf.get("sampler") == cfg.to_dict()
            and conf.get("protocol") == (protocol.to_dict() if protocol is not None else None))
    if not same or not (eval_dir / rundir.SAMPLES).is_file():
        return {}
    # The prompt decoded must be the one shift would decode: nothing cut, and the same chat template use.
    # The eval asked for the chat template as shift does (same checkpoint, so the same tokenizer), or the
    # template use it recorded is what shift asks for (asked and applied, or not asked and not applied).
    def same_prompt(info: dict | None) -> bool:
        return (isinstance(info, dict) and info.get("num_fewshot") == num_fewshot and info.get("cut_tokens") == 0
                and (bool(conf.get("chat")) == bool(chat) or info.get("chat") == bool(chat)))

    return {r["id"]: r for r in read_records(eval_dir / rundir.SAMPLES)[0] if same_prompt(r.get("prompt_info"))}


# ----------------------------------------------------------------------------------------- several processes
def run_sweep_parallel(k: int, job: dict[str, Any], out_dir: Path, log: Callable[[str], None] = lambda s: None) -> int:
    """Run `run_sweep` in `k` worker processes (one shard each, rundir's shard files), then merge their
    shard files into shift.jsonl. `job` holds run_sweep's inputs as JSON: ckpts, benchmark, data_file, n,
    cfgs (dicts), grid (dict), num_fewshot, chat, adapter, device, dtype, clean_from (paths)."""
    n_before = len(rundir.read_run_records(out_dir, SHIFT_FILE)[0])
    total = len(job["ckpts"]) * job["n"] * (1 + len(ShiftGrid(**job["grid"]).specs()))
    bar = Progress(f"shift x{k}", total, n_before, mode="lines", unit="records", log=log)
    bar.update(n_before, starting_note(k))
    last = [time.time()]

    def tick() -> None:
        if time.time() - last[0] > 2:  # reading the shard files costs: every 2 s is enough for a line every 5
            last[0] = time.time()
            got = len(rundir.read_run_records(out_dir, SHIFT_FILE)[0])
            bar.update(got, f"{k} workers" if got > n_before else starting_note(k))

    with bar:
        run_shards("from mdlm_probe.runs.shift import _worker; _worker()", {**job, "out": str(out_dir)}, k,
                   device=job.get("device"), tick=tick, label="shift worker")
    rundir.merge_shards(out_dir, SHIFT_FILE)
    return len(read_records(out_dir / SHIFT_FILE)[0]) - n_before


def _worker() -> None:
    """Entry of one spawned shift worker: rebuilds run_sweep's inputs from the job and runs its shard."""

    def work(job: dict[str, Any]) -> None:
        bench = get_benchmark(job["benchmark"], data_file=job.get("data_file"))
        samples = bench.load()[: job["n"]]
        cfgs = {c: SamplerConfig.from_dict(d) for c, d in job["cfgs"].items()}
        proto = protocol_of(job.get("preset"), job.get("protocol_source"), "shift")
        clean = {c: reusable_clean(d["dir"], d["hash"], cfgs[c], bench.name, job["num_fewshot"], job["chat"],
                                   proto) for c, d in (job.get("clean_from") or {}).items()}
        run_sweep(job["ckpts"], bench, samples, cfgs, ShiftGrid(**job["grid"]), Path(job["out"]),
                  load=lambda c: load_model(c, adapter=job.get("adapter"), device=job.get("device"), dtype=job.get("dtype"),
                                            allow_missing_weights=job.get("allow_missing_weights", False)),
                  num_fewshot=job["num_fewshot"], chat=job["chat"], shard=rundir.parse_shard(job["shard"]),
                  clean_from=clean, protocol=proto)

    worker_main(work)


# ----------------------------------------------------------------------------------------- a whole run
@dataclass
class ShiftRun:
    """What `run_shift` did: the run directory, its records and summary rows."""

    out: Path
    ckpts: list[str]
    grid: ShiftGrid
    records: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    written: int  # records decoded (or copied) by this call
    heatmap: bool  # whether shift_drop_heatmap.png was written


def shift_settings(ckpts: Sequence[str], grid: ShiftGrid, *, adapter: str | None = None,
                   sampler: dict[str, Any] | None = None, **given: Any) -> dict[str, Settings]:
    """Each checkpoint's resolved settings (`resolve_settings`, as `eval` resolves them: `given` holds
    benchmark, preset, chat, num_fewshot, dtype; no weights loaded), the grid checked against each
    gen_length. The sweep prompts every checkpoint alike, so they must agree on chat, few-shot count and
    dtype. Bad input when a checkpoint is unknown or nothing would be shifted."""
    if not ckpts:
        raise BadInput("give at least one --ckpt")
    st = {c: resolve_settings(ckpt=c, adapter=adapter, sampler=sampler, command="shift", **given) for c in ckpts}
    for c in ckpts:
        grid.validate(st[c].sampler.gen_length)
    if not grid.specs():
        raise BadInput("nothing to shift: every fraction is 0 (add e.g. --fractions 0,0.01)")
    for key, option in (("chat", "--chat/--no-chat"), ("num_fewshot", "--num-fewshot"), ("dtype", "--dtype")):
        values = {c: getattr(s, key) for c, s in st.items()}
        if len(set(values.values())) > 1:
            raise BadInput(f"the checkpoints resolve {key} differently ({values}); give {option}")
    return st


def resolve_checkpoints(ckpts: Sequence[str], sampler: dict[str, Any] | None, grid: ShiftGrid,
                        adapter: str | None = None, **given: Any) -> tuple[dict[str, Any], dict[str, SamplerConfig]]:
    """Each checkpoint's path and resolved sampler (`shift_settings`)."""
    st = shift_settings(ckpts, grid, adapter=adapter, sampler=sampler, **given)
    return {c: s.path for c, s in st.items()}, {c: s.sampler for c, s in st.items()}


def run_shift(ckpts: Sequence[str], out: Path | str, grid: ShiftGrid, *, benchmark: str | None = None,
              data_file: Path | str | None = None, data_dir: Path | str | None = None, limit: int | None = None, num_fewshot: int | None = None,
              chat: bool | None = None, sampler: dict[str, Any] | None = None, overwrite: bool = False,
              num_processes: int = 1, clean_from: Sequence[Path | str] = (), judge: Judge | None = None,
              adapter: str | None = None, device: str | None = None, dtype: str | None = None,
              allow_missing_weights: bool = False, load: Callable[[str], Any] | None = None, log: Callable[[str], None] = lambda s: None,
              preset: str | None = None, protocol_source: Path | str | None = None) -> ShiftRun:
    """A whole shift run into `out`: config.json, shift.jsonl (resumable), the judge's verdicts when a
    `judge` is given, shift_summary.csv and the plots.

    `clean_from`: eval run directories whose records can stand in for a checkpoint's clean run (see
    `reusable_clean`). `load(ckpt)` loads a model (default: `load_model` with adapter, device, dtype);
    `num_processes` > 1 decodes in that many worker processes. `log` gets progress lines. Settings not
    given (None) come from `preset`, each checkpoint's sidecar, its adapter and the defaults, as on the command
    line (`shift_settings`); the benchmark from the preset, else synthetic (`protocol_source`: eval's)."""
    ckpts = list(dict.fromkeys(ckpts))
    if limit is not None and limit <= 0:
        raise BadInput(f"--limit {limit} must be positive")
    if num_processes < 1:
        raise BadInput(f"--num-processes {num_processes}: must be at least 1")
    benchmark = benchmark or (get_preset(preset).benchmark if preset else "synthetic")
    st = shift_settings(ckpts, grid, adapter=adapter, sampler=sampler, benchmark=benchmark, preset=preset,
                        chat=chat, num_fewshot=num_fewshot, dtype=dtype, protocol_source=protocol_source)
    paths, cfgs = {c: s.path for c, s in st.items()}, {c: s.sampler for c, s in st.items()}
    first = st[ckpts[0]]
    chat, nshot, dtype, given = first.chat, first.num_fewshot, first.dtype, first.given
    provenance = first.provenance if len(ckpts) == 1 else {c: s.provenance for c, s in st.items()}
    for d in clean_from:
        if not (Path(d) / "config.json").is_file():
            raise BadInput(f"--clean-from {d}: not an eval run directory (no config.json)")
    bench = get_benchmark(benchmark, data_file=data_file, data_dir=data_dir)
    samples = bench.load()
    samples = samples[:limit] if limit else samples
    if not samples:
        raise BadInput(f"benchmark {benchmark} has no samples")
    hashes = {c: checkpoint_hash(paths[c]) for c in ckpts}
    applied, card_prot = applied_protocol(preset, protocol_source, "shift")
    config = {
        "command": "shift", "benchmark": bench.name, "data_source": bench.data_source(), "limit": limit,
        "n": len(samples), "num_fewshot": nshot, "chat": chat, "adapter": adapter, "dtype": dtype,
        "checkpoints": [{"name": c, "path": str(paths[c]), "hash": hashes[c], "sampler": cfgs[c].to_dict()}
                        for c in ckpts],
        "grid": grid.to_dict(), "settings": [s.setting for s in grid.specs()],
        **({"allow_missing_weights": True} if allow_missing_weights else {}),  # only when used, as eval
        **({"protocol": applied.to_dict()} if applied is not None else {}),  # only with a preset's protocol
        "card": build_card(benchmark=bench.name, checkpoint=paths[ckpts[0]] if len(ckpts) == 1 else None,
                           checkpoint_hash=",".join(hashes[c] for c in ckpts), dtype=dtype, device=device,
                           overrides=given, chat=chat, preset=preset, provenance=provenance,
                           protocol=card_prot),
    }
    # a larger --limit extends the run: the records so far are reused
    out = rundir.prepare_run_dir(out, config, overwrite=overwrite, outputs=OUTPUTS, grows=("limit", "n"))
    clean = {}  # checkpoint -> {"dir", "hash"} of an eval run that can stand in for its clean run
    for d in clean_from:
        for c in ckpts:
            if reusable_clean(d, hashes[c], cfgs[c], bench.name, nshot, chat, applied):
                clean[c] = {"dir": str(d), "hash": hashes[c]}
    if num_processes > 1:
        # the file the benchmark settled on (--data-file, --data-dir or the environment), so workers read the same
        job = {"ckpts": ckpts, "benchmark": bench.name, "data_file": None if bench.data_file is None else str(bench.data_file),
               "n": len(samples), "cfgs": {c: cfgs[c].to_dict() for c in ckpts}, "grid": grid.to_dict(),
               "num_fewshot": nshot, "chat": chat, "adapter": adapter, "device": device, "dtype": dtype,
               "clean_from": clean, "allow_missing_weights": allow_missing_weights, "preset": preset,
               "protocol_source": applied.source if applied is not None else None}
        written = run_sweep_parallel(num_processes, job, out, log=log)
    else:
        load = load or (lambda c: load_model(c, adapter=adapter, device=device, dtype=dtype,
                                             allow_missing_weights=allow_missing_weights))
        reuse = {c: reusable_clean(v["dir"], v["hash"], cfgs[c], bench.name, nshot, chat, applied)
                 for c, v in clean.items()}
        written = run_sweep(ckpts, bench, samples, cfgs, grid, out, load=load, num_fewshot=nshot, chat=chat,
                            log=log, clean_from=reuse, protocol=applied)
    judged = judge_run(out, judge, log=log) if judge is not None else read_judged(out)
    recs = read_records(out / SHIFT_FILE)[0]
    note_prompts_cut(out, cut_prompts(recs))  # the card: how many prompts a protocol's truncation cut
    rows = summarize(recs, grid, judged=judged)
    write_summary_csv(rows, out / SUMMARY_FILE)
    plot_accuracy(rows, out / ACC_PNG)
    heatmap = plot_drop_heatmap(rows, out / HEATMAP_PNG)
    return ShiftRun(out=out, ckpts=ckpts, grid=grid, records=recs, rows=rows, written=written, heatmap=heatmap)


def prompt_pairs(prompt: str, ckpts: Sequence[str], cfgs: dict[str, SamplerConfig], grid: ShiftGrid,
                 load: Callable[[str], Any], chat: bool = False):
    """Decode one prompt clean and under each setting of `grid` (nothing written):
    yields (checkpoint, model, clean record, shifted record, setting)."""
    for c in ckpts:
        model, cfg = load(c), cfgs[c]
        clean = make_record(id="prompt/0@clean", ckpt=c, **generate(model, [prompt], cfg, chat=chat,
                                                                     sample_ids=["prompt/0"])[0])
        for spec in grid.specs():
            rec = generate(model, [prompt], cfg, hooks=[spec], chat=chat, sample_ids=["prompt/0"])[0]
            iv = intervention_field(spec, (rec.pop("hook_info", None) or {}).get(spec.key), "prompt/0")
            shifted = make_record(id=f"prompt/0@{spec.setting}", ckpt=c, intervention=iv, **rec)
            yield c, model, clean, shifted, spec.setting


# ----------------------------------------------------------------------------------------- summary
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
        groups[(r["ckpt"], mode_label(iv["mode"], iv.get("direction")), where_label(iv),
                when_label(iv.get("at"), iv.get("at_step")))].append((c, r))
    if grid is not None and 0 in [float(f) for f in grid.fractions] and grid.positions is None:
        by_ckpt: dict[str, list[dict]] = defaultdict(list)
        for (ck, _), c in clean.items():
            by_ckpt[ck].append(c)
        modes = [mode_label(m, grid.direction) for m in grid.modes]
        whens = [when_label(a, grid.at_step) for a in ([None] if grid.at_step is not None else grid.ats)]
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
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols or ["ckpt"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})
