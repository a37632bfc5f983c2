"""Evaluation on benchmarks (see `mdlm-probe eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import synthetic
from .scoring import score_math


def heldout_accuracy(ckpt: str | Path, n: int = synthetic.HELDOUT_SIZE, sampler: dict[str, Any] | None = None) -> float:
    """Accuracy (T = 0 by default) on the first `n` held-out synthetic problems."""
    from .adapters import load_model
    from .sampler import SamplerConfig, generate

    model = load_model(ckpt)
    cfg = SamplerConfig.from_dict(sampler or (model.sidecar or {}).get("sampler") or {})
    probs = synthetic.heldout(synthetic.HELDOUT_SIZE)[:n]
    recs = generate(model, [synthetic.format_prompt(p.question) for p in probs], cfg)
    ok = [score_math(r["text"], p.answer)["correct"] for r, p in zip(recs, probs)]
    return round(sum(ok) / len(ok), 4)
