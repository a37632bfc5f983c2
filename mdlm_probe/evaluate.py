"""Evaluation on benchmarks: from samples to scored records (CONVENTIONS.md), and held-out accuracy.

`build_records` is the one place a benchmark sample becomes a full sample record; `mdlm-probe eval`,
`shift` and `demo` all go through it, so their records agree field for field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from . import synthetic
from .benchmarks import Benchmark, Sample
from .records import make_record


def build_records(model, bench: Benchmark, samples: Sequence[Sample], cfg, *, ckpt_name: str,
                  num_fewshot: int = 0, chat: bool = False, hooks: Sequence = (), id_suffix: str = "",
                  prompts: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Decode `samples` with sampler settings `cfg` (one `generate` call) and score them.

    `prompts` overrides the benchmark's prompt texts (e.g. after left-truncation by the caller).
    Record ids are `<benchmark>/<native id><id_suffix>`.
    """
    from .sampler import generate

    texts = list(prompts) if prompts is not None else [bench.prompt(s, num_fewshot) for s in samples]
    ids = [f"{bench.name}/{s.native_id}" for s in samples]
    outs = generate(model, texts, cfg, hooks=hooks, chat=chat, sample_ids=ids)
    scored = bench.score_many([o["text"] for o in outs], list(samples))
    recs = []
    for sid, s, o, sc in zip(ids, samples, outs, scored):
        recs.append(make_record(id=sid + id_suffix, benchmark=bench.name, ckpt=ckpt_name, reference=s.reference,
                                reference_answer=s.reference_answer, intervention=None, **o, **sc))
    return recs


def heldout_accuracy(ckpt: str | Path, n: int = synthetic.HELDOUT_SIZE, sampler: dict[str, Any] | None = None) -> float:
    """Accuracy (T = 0 by default) on the first `n` held-out synthetic problems."""
    from .adapters import load_model
    from .benchmarks import get_benchmark
    from .sampler import SamplerConfig

    model = load_model(ckpt)
    cfg = SamplerConfig.from_dict(sampler or (model.sidecar or {}).get("sampler") or {})
    bench = get_benchmark("synthetic")
    recs = build_records(model, bench, bench.load()[:n], cfg, ckpt_name=str(ckpt))
    return round(sum(bool(r["correct"]) for r in recs) / len(recs), 4)
