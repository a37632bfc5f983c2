"""Sampler settings resolved for one checkpoint: command line > checkpoint sidecar > adapter defaults > defaults."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .config import SamplerConfig


def resolve_sampler(overrides: dict[str, Any] | None, model=None) -> SamplerConfig:
    """An option not given comes from the checkpoint sidecar's `sampler`, then the adapter's defaults for its
    family (`model.extra["sampler_defaults"]`: Dream's plan and filters), then the defaults
    (docs/conventions.md). A checkpoint without sidecar settings has no block layout of its own: there
    `block_length` and `steps` default to the gen length (one block, one token per step)."""
    base = asdict(SamplerConfig())
    base.update(((getattr(model, "extra", None) or {}).get("sampler_defaults")) or {})  # the adapter's (Dream's)
    side = (getattr(model, "sidecar", None) or {}).get("sampler") or {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None and k in base}
    if not side:
        g = given.get("gen_length", base["gen_length"])
        base.update(block_length=g, steps=g)
    base.update({k: v for k, v in side.items() if k in base})
    base.update(given)
    return SamplerConfig.from_dict(base).validate()
