"""Evaluation on benchmarks: from samples to scored records (docs/conventions.md), held-out accuracy, and
`run_eval`, the library behind `mdlm-probe eval` (resumable run directories, shards, several processes).

`build_records` is the one place a benchmark sample becomes a full sample record; `mdlm-probe eval`,
`shift` and `demo` all go through it, so their records agree field for field.

Batches are fixed: consecutive runs of `batch_size` samples over the full id order, each seeded from the
run seed and its first sample id. A sample's output therefore depends only on the run's config, never on
sharding, on the number of processes or on where a killed run resumed (a partly written batch is decoded
again and only its missing ids are written). `--shard i/n` takes every n-th batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from mdlm_probe.adapters import describe_checkpoint, load_model
from mdlm_probe.core.cards import build_card, short_sha256
from mdlm_probe.core.checkpoints import checkpoint_hash
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import Progress, starting_note
from mdlm_probe.core.records import RecordWriter, iter_jsonl, make_record, read_records
from mdlm_probe.core.rundir import (SAMPLES, SHARDS, _comparable, parse_shard, prepare_run_dir, read_run_records,
                                    shard_path)
from mdlm_probe.core.stats import wilson
from mdlm_probe.core.workers import run_shards, worker_main
from mdlm_probe.decoding import SamplerConfig, generate
from mdlm_probe.tasks import synthetic
from mdlm_probe.tasks.benchmarks import Benchmark, Sample, get_benchmark
from mdlm_probe.tasks.presets import card_protocol, get_preset
from .miners import eos_flood
from .protocol import Protocol, encode_protocol, protocol_of, protocol_samples, protocol_texts, score_outputs
from .settings import resolve_settings

SUMMARY = "summary.json"
OUTPUTS = (SAMPLES, SUMMARY, SHARDS, "model_answer")


def build_records(model, bench: Benchmark, samples: Sequence[Sample], cfg, *, ckpt_name: str,
                  num_fewshot: int = 0, chat: bool = False, hooks: Sequence = (), id_suffix: str = "",
                  prompts: Sequence[str] | None = None, state=None,
                  protocol: Protocol | None = None) -> list[dict[str, Any]]:
    """Decode `samples` with sampler settings `cfg` (one `generate` call) and score them.

    `prompts` overrides the benchmark's prompt texts (e.g. after left-truncation by the caller).
    Record ids are `<benchmark>/<native id><id_suffix>`. `state`: continue from a fork (`generate`'s; the
    shift sweep's shared decoding); a decode a hook halted gives no records. `protocol`: a preset's published
    protocol (runs/protocol.py): its reference prompts (rendered already: `chat` is not applied again) encoded
    by its bos and truncation rules, its stop rule and extraction, against the reference's answers.
    """
    enc = None
    if protocol is not None:
        samples = protocol_samples(bench, samples, protocol)
    if prompts is not None:
        texts = list(prompts)
    elif protocol is not None:
        enc = encode_protocol(model.tokenizer, protocol_texts(model.tokenizer, bench, samples, protocol, num_fewshot),
                              protocol, cfg.gen_length, model.max_length)
        texts = [i for _, i, _ in enc]
    else:
        texts = [bench.prompt(s, num_fewshot) for s in samples]
    ids = [f"{bench.name}/{s.native_id}" for s in samples]
    outs = generate(model, texts, cfg, hooks=hooks, chat=chat and protocol is None, sample_ids=ids, state=state)
    scored = score_outputs(model, protocol, outs, list(samples), bench) if protocol is not None else \
        bench.score_many([o["text"] for o in outs], list(samples))
    recs = []
    for sid, s, o, sc in zip(ids, samples, outs, scored):
        recs.append(make_record(id=sid + id_suffix, benchmark=bench.name, ckpt=ckpt_name, reference=s.reference,
                                reference_answer=s.reference_answer, intervention=None, **o, **sc))
    for r, (text, _, cut) in zip(recs, enc or ()):  # the text encoded, not its ids decoded again
        r["prompt"] = text
        if protocol.keep is not None:  # a protocol that cuts prompts: how many tokens it cut
            r["prompt_info"] = {"cut_tokens": cut}
    return recs


def heldout_accuracy(ckpt: str | Path, n: int = synthetic.HELDOUT_SIZE, sampler: dict[str, Any] | None = None,
                     progress: str = "off") -> float:
    """Accuracy (T = 0 by default) on the first `n` held-out synthetic problems. `progress`: a Progress mode
    (the problems are decoded one batch at a time; each batch is seeded alike, so the result is the same)."""
    model = load_model(ckpt)
    cfg = SamplerConfig.from_dict(sampler or (model.sidecar or {}).get("sampler") or {})
    bench = get_benchmark("synthetic")
    samples = bench.load()[:n]
    right = 0
    with Progress("held-out eval", len(samples), mode=progress, unit="problems") as bar:
        for s in range(0, len(samples), cfg.batch_size):
            recs = build_records(model, bench, samples[s: s + cfg.batch_size], cfg, ckpt_name=str(ckpt))
            right += sum(bool(r["correct"]) for r in recs)
            done = min(len(samples), s + cfg.batch_size)
            bar.update(done, _acc(done, right))
    return round(right / len(samples), 4)


# ----------------------------------------------------------------------------------------- batches and shards
def plan_batches(n: int, batch_size: int) -> list[range]:
    """Fixed batches over the full id order: [0, bs), [bs, 2bs), ..."""
    return [range(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]


def batch_seed(seed: int, first_id: str) -> int:
    """The seed of a batch: from the run seed and its first sample id, so batches draw independent noise."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{first_id}".encode()).digest()[:4], "big")


def env_shard() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) under `accelerate launch` / torchrun, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    return rank, world, int(os.environ.get("LOCAL_RANK", rank))


def shard_file(out: Path, shard: tuple[int, int]) -> Path:
    return shard_path(out, SAMPLES, shard)


# ----------------------------------------------------------------------------------------- prompts
def encode_prompts_cut(model, texts: Sequence[str], chat: bool, gen_length: int) -> list[tuple[str, list[int], int]]:
    """Prompt texts -> (exact text given, token ids, tokens cut from the left to fit max_length - gen_length)."""
    tok = model.tokenizer
    keep = model.max_length - gen_length
    if keep <= 0:
        raise BadInput(f"gen-length {gen_length} leaves no room for a prompt (the model's max length is {model.max_length})")
    out = []
    for t in texts:
        if chat and getattr(tok, "chat_template", None):
            t = tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
        ids = tok(t, add_special_tokens=False)["input_ids"]
        cut = max(0, len(ids) - keep)
        if cut:
            ids = ids[cut:]
            t = tok.decode(ids)
        out.append((t, ids, cut))
    return out


def decode_batch(model, bench: Benchmark, samples: Sequence[Sample], cfg, *, ckpt_name: str, num_fewshot: int,
                 chat: bool, index: int = 0, protocol: Protocol | None = None) -> list[dict[str, Any]]:
    """One fixed batch -> full records (through `build_records`), seeded from its first sample id. With a
    `protocol`: its reference prompts (rendered), encoded by its bos and truncation rules (a prompt that does
    not fit is refused, never cut further), its stop rule and extraction."""
    if protocol is not None:
        enc = encode_protocol(model.tokenizer, protocol_texts(model.tokenizer, bench, samples, protocol, num_fewshot),
                              protocol, cfg.gen_length, model.max_length)
    else:
        enc = encode_prompts_cut(model, [bench.prompt(s, num_fewshot) for s in samples], chat, cfg.gen_length)
    seed = batch_seed(cfg.seed, f"{bench.name}/{samples[0].native_id}")
    recs = build_records(model, bench, samples, replace(cfg, seed=seed), ckpt_name=ckpt_name,
                         prompts=[ids for _, ids, _ in enc], protocol=protocol)
    applied = protocol.chat if protocol is not None else bool(chat and getattr(model.tokenizer, "chat_template", None))
    for r, (text, _, cut) in zip(recs, enc):
        r["prompt"] = text
        r["sampler"] = cfg.to_dict()  # the run's settings; the batch's own seed is in `batch`
        r["batch"] = {"index": index, "seed": seed}
        r["prompt_info"] = {"num_fewshot": num_fewshot, "chat": applied, "cut_tokens": cut,
                            **({"protocol": protocol.preset} if protocol is not None else {})}
    return recs


# ----------------------------------------------------------------------------------------- summary and merging
def summarize(records: Sequence[dict[str, Any]], n_planned: int | None = None) -> dict[str, Any]:
    """n, accuracy with a Wilson 95% interval, verdict counts, per-metric rates, truncations."""
    scored = [r for r in records if r.get("correct") is not None]
    k = sum(bool(r["correct"]) for r in scored)
    lo, hi = wilson(k, len(scored))
    verdicts: dict[str, int] = {}
    for r in records:
        verdicts[r.get("verdict") or "none"] = verdicts.get(r.get("verdict") or "none", 0) + 1
    metrics: dict[str, float] = {}
    for name in sorted({m for r in records for m, v in (r.get("scores") or {}).items() if isinstance(v, bool)}):
        vals = [r["scores"][name] for r in records if isinstance((r.get("scores") or {}).get(name), bool)]
        metrics[name] = round(sum(vals) / len(vals), 6) if vals else None
    empty = sum(bool(eos_flood(r)) for r in records)  # nothing to score: empty or only EOS after collapse
    return {
        "n": len(records),
        "n_planned": n_planned if n_planned is not None else len(records),
        "n_scored": len(scored),
        "correct": k,
        "accuracy": round(k / len(scored), 6) if scored else None,
        "ci95": [round(lo, 6), round(hi, 6)] if scored else None,
        "verdicts": dict(sorted(verdicts.items())),
        "scores": metrics,
        # lm-eval's two GSM8K filters side by side ("strict-match", "flexible-extract"); `accuracy` is
        # strict where strict found an answer, else flexible (docs/eval.md)
        "extraction": {"strict": metrics["strict"], "flexible": metrics["flexible"],
                       "strict_found": metrics.get("strict_found")}
        if "strict" in metrics and "flexible" in metrics else None,
        "empty_outputs": empty,
        "empty_rate": round(empty / len(records), 6) if records else None,
        "truncated_prompts": sum(1 for r in records if (r.get("prompt_info") or {}).get("cut_tokens")),
        "generated_tokens": sum(len(r.get("output_ids") or []) for r in records),
        "nfe_mean": round(sum(r.get("nfe") or 0 for r in records) / len(records), 3) if records else None,
    }


def timing(records: Sequence[dict[str, Any]], wall: float, **extra: Any) -> dict[str, Any]:
    decode = sum(float(r.get("seconds") or 0.0) for r in records)
    toks = sum(len(r.get("output_ids") or []) for r in records)
    return {"wall_seconds": round(wall, 3), "decode_seconds": round(decode, 3),
            "tokens_per_second": round(toks / decode, 2) if decode > 0 else None,
            "samples_per_second": round(len(records) / decode, 3) if decode > 0 else None, **extra}


def collect(out: Path) -> dict[str, dict[str, Any]]:
    """id -> record over samples.jsonl and every shard file (first one wins; one checkpoint per eval run)."""
    return {r["id"]: r for r in read_run_records(out, SAMPLES)[0]}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def finalize(out: Path, plan_ids: Sequence[str], header: dict[str, Any], wall: float,
             **timing_extra: Any) -> dict[str, Any] | None:
    """When every planned id has a record: samples.jsonl in plan order (rewritten only if it is not
    already), and summary.json. Returns the summary, or None while ids are missing."""
    got = collect(out)
    if any(i not in got for i in plan_ids):
        return None
    recs = [got[i] for i in plan_ids]
    current, bad = read_records(out / SAMPLES)
    if bad or [r["id"] for r in current] != list(plan_ids):
        _atomic_write(out / SAMPLES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    summary = {**header, **summarize(recs, len(plan_ids)), "timing": timing(recs, wall, **timing_extra)}
    _atomic_write(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    note_prompts_cut(out, summary["truncated_prompts"])
    return summary


def note_prompts_cut(out: Path, n: int) -> None:
    """A run that applied a preset's protocol with a truncation ("left:N"): its card says how many prompts
    that cut (`card.protocol.prompts_cut`, known once every record is there; the card is not compared on resume)."""
    path = out / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    protocol = (config.get("card") or {}).get("protocol") or {}
    if not str((protocol.get("applied") or {}).get("truncation") or "").startswith("left:") \
            or protocol.get("prompts_cut") == n:
        return
    protocol["prompts_cut"] = n
    _atomic_write(path, json.dumps(config, indent=2) + "\n")


# ----------------------------------------------------------------------------------------- progress
def _progress(progress: bool | str, label: str, total: int, done: int, correct: int) -> Progress:
    """True: a bar; False: nothing; "auto": a bar on a terminal, else a line every few seconds."""
    mode = {True: "bar", False: "off"}.get(progress, progress) if isinstance(progress, bool) else progress
    bar = Progress(label, total, done, mode=mode)
    bar.update(done, _acc(done, correct))
    return bar


def _acc(done: int, correct: int) -> str:
    return f"acc {correct / done:.3f}" if done else "acc -"


# ----------------------------------------------------------------------------------------- run_eval
def run_eval(ckpt: str | Path, benchmark: str | Benchmark, out: str | Path,
             sampler_overrides: dict[str, Any] | None = None, limit: int | None = None,
             num_fewshot: int | None = None, chat: bool | None = None, data_file: str | Path | None = None,
             predictions: str | Path | None = None, shard: str | tuple[int, int] | None = None,
             overwrite: bool = False, progress: bool | str = False, *, subset: str | None = None,
             num_processes: int = 1, adapter: str | None = None, device: str | None = None,
             dtype: str | None = None, allow_missing_weights: bool = False, model=None,
             preset: str | None = None, protocol_source: str | Path | None = None) -> dict[str, Any]:
    """Evaluate `ckpt` on `benchmark` into the run directory `out`; returns the summary.

    Settings not given (None) come from `preset`, the checkpoint's sidecar, its adapter and the defaults, as
    on the command line (`runs.settings.resolve_settings`). Resumes a killed run (only missing ids are decoded); a different config in `out` is BadInput unless
    `overwrite`. `shard` 'i/n' decodes every n-th fixed batch into shards/; when every shard is complete
    the one finishing last merges them into samples.jsonl + summary.json (identical to a single-process
    run apart from `timing`). Until then the return value has `complete: False`. `num_processes` > 1
    spawns that many shard workers (one GPU each when CUDA is there) and merges. Under `accelerate launch`
    (WORLD_SIZE > 1) the shard comes from RANK / WORLD_SIZE and the device from LOCAL_RANK.
    `protocol_source`: the user's checkout holding a prompt text a preset needs and mdlm-probe does not store
    (OpenCompass's GPQA 5-shot; `--protocol-source`).
    """
    t0 = time.perf_counter()
    out = Path(out)
    bench = _benchmark(benchmark, data_file, subset, limit, num_processes)
    shard = parse_shard(shard)
    info = st = None
    if predictions is None:  # the checkpoint and its settings first: cheaper than the data, and named as such
        info = model if model is not None else describe_checkpoint(ckpt, adapter)  # no weights yet
        st = resolve_settings(ckpt=ckpt, model=info, benchmark=bench, preset=preset, sampler=sampler_overrides,
                              chat=chat, num_fewshot=num_fewshot, dtype=dtype, command="eval",
                              protocol_source=protocol_source)
    elif preset is not None and num_fewshot is None:  # scored completions: only the prompt's shots apply
        num_fewshot = get_preset(preset).num_fewshot
    shard, from_env, device = _settle_shard(shard, num_processes, device)
    every = bench.load()
    samples = every[:limit] if limit is not None else every
    if predictions is not None:
        return _run_predictions(bench, every, samples, Path(predictions), out, num_fewshot, overwrite, t0)

    plan = _plan(ckpt, info, st, bench, samples, shard, device, adapter=adapter, limit=limit, preset=preset,
                 num_processes=num_processes, allow_missing_weights=allow_missing_weights,
                 protocol_source=protocol_source)
    if from_env is not None and from_env[0] > 0:
        _wait_for_config(out, plan.config)  # rank 0 creates (or overwrites) the run directory
    else:
        # a larger --limit extends the run: the records so far are reused
        prepare_run_dir(out, plan.config, overwrite=overwrite, outputs=OUTPUTS, grows=("limit", "n_planned"))
    if num_processes > 1:
        return _spawn(out, plan.plan_ids, plan.header, t0, num_processes, progress, device, plan.ckpt_hash, dict(
            ckpt=str(ckpt), benchmark=bench.name, out=str(out), sampler_overrides=st.given, preset=preset,
            limit=limit, num_fewshot=plan.num_fewshot, chat=plan.chat,  # exports too
            protocol_source=plan.protocol.source if plan.protocol is not None else None,
            data_file=str(bench.data_file) if bench.data_file else None, subset=bench.options.get("subset"),
            adapter=adapter, dtype=plan.dtype, allow_missing_weights=allow_missing_weights))
    model, n_shard = _decode_into(out, plan, model, progress, adapter=adapter,
                                  allow_missing_weights=allow_missing_weights)
    return _summarise(out, plan, model, time.perf_counter() - t0, n_shard)


# run_eval's steps: check the arguments, settle the shard, plan the run (its config), decode, summarise.
def _benchmark(benchmark: str | Benchmark, data_file, subset: str | None, limit: int | None,
               num_processes: int) -> Benchmark:
    """The benchmark to run, after the cheap checks of run_eval's arguments."""
    bench = benchmark if isinstance(benchmark, Benchmark) else \
        get_benchmark(benchmark, data_file=data_file, **({"subset": subset} if subset else {}))
    if subset and not bench.subsets:
        raise BadInput(f"--subset {subset}: {bench.name} has no subsets")
    if limit is not None and limit <= 0:
        raise BadInput(f"--limit {limit}: must be positive")
    if num_processes < 1:
        raise BadInput(f"--num-processes {num_processes}: must be at least 1")
    return bench


def _settle_shard(shard: tuple[int, int] | None, num_processes: int, device: str | None):
    """(shard or None, the launcher's (rank, world, local rank) or None, device): under `accelerate launch`
    the shard comes from RANK / WORLD_SIZE and the device from LOCAL_RANK; a shard 'i/1' is the whole run."""
    from_env = None
    if shard is None and num_processes == 1 and (from_env := env_shard()) is not None:
        shard = (from_env[0], from_env[1])
        if device is None and torch.cuda.is_available():
            device = f"cuda:{from_env[2]}"
    if shard is not None and num_processes > 1:
        raise BadInput("give --shard or --num-processes, not both")
    if shard is not None and shard[1] == 1:
        shard = None
    return shard, from_env, device


@dataclass
class _EvalPlan:
    """What a run settled before decoding: the samples and their ids, the resolved settings, the run's config
    (config.json) and the header every summary repeats."""

    bench: Benchmark
    samples: Sequence[Sample]
    plan_ids: list[str]
    cfg: SamplerConfig
    chat: bool
    num_fewshot: int
    dtype: str | None
    path: Path | str
    ckpt_name: str
    ckpt_hash: str
    shard: tuple[int, int] | None
    device: str | None
    config: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    protocol: Protocol | None = None  # a preset's published protocol, applied (runs/protocol.py)


def _plan(ckpt, info, st, bench: Benchmark, samples: Sequence[Sample], shard, device, *, adapter, limit, preset,
          num_processes: int, allow_missing_weights: bool, protocol_source=None) -> _EvalPlan:
    """The run's plan and config from the checkpoint (`info`: described or loaded) and its settings `st`."""
    path, sidecar = info.path, info.sidecar
    cfg = st.sampler
    ckpt_name = (sidecar or {}).get("name") or str(ckpt)
    ckpt_hash = os.environ.get("MDLM_PROBE_CKPT_HASH") or checkpoint_hash(path)
    plan = _EvalPlan(bench=bench, samples=samples, plan_ids=[f"{bench.name}/{s.native_id}" for s in samples],
                     cfg=cfg, chat=st.chat, num_fewshot=st.num_fewshot, dtype=st.dtype, path=path,
                     ckpt_name=ckpt_name, ckpt_hash=ckpt_hash, shard=shard, device=device,
                     protocol=protocol_of(preset, protocol_source))
    protocol = card_protocol(preset)
    if protocol is not None and plan.protocol is not None:  # the card says the protocol was applied
        protocol["applied"] = plan.protocol.to_dict()
    plan.config = {
        "command": "eval", "benchmark": bench.name, "ckpt": ckpt_name, "checkpoint": str(path),
        "checkpoint_hash": ckpt_hash, "adapter": adapter, "dtype": plan.dtype, "data_source": bench.data_source(),
        "benchmark_options": bench.options, "limit": limit, "n_planned": len(samples),
        "num_fewshot": plan.num_fewshot, "chat": plan.chat, "sampler": cfg.to_dict(), "seed": cfg.seed,
        "predictions": None,
        # recorded only with a preset's protocol, so runs without one keep the config they always had
        **({"protocol": plan.protocol.to_dict()} if plan.protocol is not None else {}),
        "batching": "fixed batches of sampler.batch_size over the id order; batch seed from (seed, first id)",
        "shard": f"{shard[0]}/{shard[1]}" if shard else None, "num_processes": num_processes,
        # recorded only when used, so runs of complete checkpoints keep the config they always had
        **({"allow_missing_weights": True} if allow_missing_weights else {}),
        "card": build_card(benchmark=bench.name, checkpoint=path, checkpoint_hash=ckpt_hash, dtype=plan.dtype,
                           device=device, overrides=st.given, chat=plan.chat, preset=preset,
                           provenance=st.provenance, protocol=protocol),
    }
    plan.header = {"benchmark": bench.name, "ckpt": ckpt_name, "checkpoint_hash": ckpt_hash,
                   "data_source": bench.data_source(), "num_fewshot": plan.num_fewshot, "sampler": cfg.to_dict()}
    return plan


def _decode_into(out: Path, plan: _EvalPlan, model, progress: bool | str, *, adapter,
                 allow_missing_weights: bool):
    """Decode this process's batches that still miss records and append them (samples.jsonl or its shard file).
    Returns (the model, loaded only if something was left to decode; the number of samples this process owns)."""
    shard, plan_ids = plan.shard, plan.plan_ids
    batches = plan_batches(len(plan.samples), plan.cfg.batch_size)
    mine = [k for k in range(len(batches)) if shard is None or k % shard[1] == shard[0]]
    done = collect(out)
    todo = [k for k in mine if any(plan_ids[j] not in done for j in batches[k])]
    total = sum(len(batches[k]) for k in mine)
    if not todo:
        return model, total
    n_done = total - sum(plan_ids[j] not in done for k in todo for j in batches[k])
    n_right = sum(bool(done[plan_ids[j]].get("correct")) for k in mine for j in batches[k] if plan_ids[j] in done)
    label = f"{plan.bench.name} {plan.ckpt_name}" + (f" shard {shard[0]}/{shard[1]}" if shard else "")
    if model is None:
        model = load_model(plan.path, adapter=adapter, device=plan.device, dtype=plan.dtype,
                           allow_missing_weights=allow_missing_weights)
    bar = _progress(progress, label, total, n_done, n_right)
    try:
        with RecordWriter(shard_file(out, shard) if shard else out / SAMPLES) as w:
            for k in todo:
                batch = [plan.samples[j] for j in batches[k]]
                for r in decode_batch(model, plan.bench, batch, plan.cfg, ckpt_name=plan.ckpt_name,
                                      num_fewshot=plan.num_fewshot, chat=plan.chat, index=k,
                                      protocol=plan.protocol):
                    if r["id"] not in done:  # a partly written batch: decoded again, only missing ids written
                        w.write(r)
                        n_done += 1
                        n_right += bool(r["correct"])
                bar.update(n_done, _acc(n_done, n_right))
    finally:
        bar.close()
    return model, total


def _summarise(out: Path, plan: _EvalPlan, model, wall: float, n_shard: int) -> dict[str, Any]:
    """summary.json (and the benchmark's own answer files) once every planned id has a record; before that,
    this process's progress with `complete: False`."""
    shard = plan.shard
    dev = str(model.device) if model is not None else plan.device
    summary = finalize(out, plan.plan_ids, plan.header, wall, device=dev, num_processes=shard[1] if shard else 1)
    if summary is None:
        return {**plan.header, "complete": False, "shard": f"{shard[0]}/{shard[1]}" if shard else None,
                "n_shard": n_shard, "n_done": len(collect(out)), "n_planned": len(plan.plan_ids)}
    export_answers(plan.bench, out, plan.ckpt_name, plan.plan_ids)
    return {**summary, "complete": True}


def export_answers(bench: Benchmark, out: Path, model: str, plan_ids: Sequence[str]) -> None:
    """Open-ended benchmarks also write their answers in their own tools' format (arena-hard: model_answer/)."""
    if hasattr(bench, "export_answers"):
        got = collect(out)
        bench.export_answers(out, model, [got[i] for i in plan_ids])


def _wait_for_config(out: Path, config: dict[str, Any], timeout: float = 900.0) -> None:
    want = _comparable(json.loads(json.dumps(config, default=str)))
    t_end = time.time() + timeout
    while time.time() < t_end:
        try:
            if _comparable(json.loads((out / "config.json").read_text())) == want:
                return
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise BadInput(f"{out}/config.json never matched this rank's config (did rank 0 start with the same options?)")


# ----------------------------------------------------------------------------------------- several processes
def _spawn(out: Path, plan_ids: list[str], header: dict[str, Any], t0: float, k: int, progress: bool,
           device: str | None, ckpt_hash: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run K shard workers (`python -c ... _worker`), show their joint progress, merge their shards."""
    files = [shard_file(out, (i, k)) for i in range(k)]
    base = {r["id"]: r for r in read_records(out / SAMPLES)[0]}

    def records() -> dict[str, dict]:
        got = dict(base)
        for f in files:
            got.update({r["id"]: r for r in read_records(f)[0]})
        return got

    before = records()
    n_right = sum(bool(r.get("correct")) for r in before.values())
    bar = _progress(progress, f"{header['benchmark']} {header['ckpt']} x{k}", len(plan_ids), len(before), n_right)
    bar.update(len(before), starting_note(k))

    def tick() -> None:
        got = records()
        note = _acc(len(got), sum(bool(r.get("correct")) for r in got.values()))
        bar.update(len(got), note if len(got) > len(before) else starting_note(k))

    try:
        run_shards("from mdlm_probe.runs.evaluate import _worker; _worker()", kwargs, k, device=device,
                   env={"MDLM_PROBE_CKPT_HASH": ckpt_hash, "WORLD_SIZE": "1"}, tick=tick)
    finally:
        bar.close()
    summary = finalize(out, plan_ids, header, time.perf_counter() - t0, device=device, num_processes=k)
    if summary is None:
        raise RuntimeError(f"workers finished but {out} still misses records")
    export_answers(get_benchmark(header["benchmark"], data_file=kwargs.get("data_file")), out, header["ckpt"], plan_ids)
    return {**summary, "complete": True}


def _worker() -> None:
    """Entry of one spawned shard worker."""
    worker_main(lambda job: run_eval(**job))


# ----------------------------------------------------------------------------------------- predictions
def read_predictions(path: Path, bench: Benchmark, known: dict[str, Sample]) -> dict[str, str]:
    """native id -> completion from a JSONL of {id | native_id | doc_id, completion}."""
    preds: dict[str, str] = {}
    for n, obj in iter_jsonl(path, "predictions file"):
        if not isinstance(obj, dict):
            raise BadInput(f"{path}:{n}: not a JSON object")
        raw = next((obj[k] for k in ("id", "native_id", "doc_id") if obj.get(k) is not None), None)
        if raw is None or not isinstance(obj.get("completion"), str):
            raise BadInput(f"{path}:{n}: needs an 'id' (or 'native_id') and a 'completion' string")
        nid = str(raw).removeprefix(f"{bench.name}/")
        if nid not in known:
            raise BadInput(f"{path}:{n}: id {raw!r} is not in {bench.name} ({bench.data_source()})")
        if nid in preds:
            raise BadInput(f"{path}:{n}: id {raw!r} appears twice")
        preds[nid] = obj["completion"]
    if not preds:
        raise BadInput(f"{path} holds no predictions")
    return preds


def _run_predictions(bench: Benchmark, every: list[Sample], samples: list[Sample], path: Path, out: Path,
                     num_fewshot: int | None, overwrite: bool, t0: float) -> dict[str, Any]:
    """Score completions made elsewhere (no model): records and summary as a normal run. Ids are checked
    against the whole benchmark; `samples` (the first --limit of them) are the ones scored."""
    preds = read_predictions(path, bench, {s.native_id: s for s in every})
    chosen = [s for s in samples if s.native_id in preds]  # benchmark order
    if not chosen:
        raise BadInput(f"{path}: none of its ids is among the first {len(samples)} {bench.name} samples (--limit)")
    k = 0 if num_fewshot is None else num_fewshot
    name = f"predictions:{path.name}"
    digest = short_sha256(path.read_bytes())
    config = {"command": "eval", "benchmark": bench.name, "ckpt": name, "checkpoint_hash": None,
              "data_source": bench.data_source(), "benchmark_options": bench.options, "n_planned": len(chosen),
              "num_fewshot": k, "predictions": str(path), "predictions_sha256": digest, "sampler": None,
              "card": build_card(benchmark=bench.name, checkpoint=None, checkpoint_hash=None, dtype=None,
                                 device=None, overrides=None, chat=None)}
    prepare_run_dir(out, config, overwrite=overwrite, outputs=OUTPUTS)
    done = collect(out)
    scored = bench.score_many([preds[s.native_id] for s in chosen], chosen)
    with RecordWriter(out / SAMPLES) as w:
        for s, sc in zip(chosen, scored):
            rid = f"{bench.name}/{s.native_id}"
            if rid in done:
                continue
            text = preds[s.native_id]
            w.write(make_record(id=rid, benchmark=bench.name, ckpt=name, prompt=bench.prompt(s, k),
                                reference=s.reference, reference_answer=s.reference_answer, raw_text=text,
                                text_surface=text, text_ctc=text, text=text, intervention=None, **sc))
    header = {"benchmark": bench.name, "ckpt": name, "checkpoint_hash": None, "data_source": bench.data_source(),
              "num_fewshot": k, "sampler": None}
    summary = finalize(out, [f"{bench.name}/{s.native_id}" for s in chosen], header, time.perf_counter() - t0)
    return {**summary, "complete": True}
