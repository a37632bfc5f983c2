"""Sampler settings resolved for one checkpoint: the layers given (command line, preset) > checkpoint sidecar >
adapter defaults > defaults. The whole run's settings (chat, few-shot count, dtype, the preset) are resolved
by `mdlm_probe.runs.settings.resolve_settings`, which calls `resolve_sampler_sources` for the sampler part."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

from .config import SamplerConfig


def resolve_sampler_sources(layers: Sequence[tuple[str, dict[str, Any] | None]], model=None
                            ) -> tuple[SamplerConfig, dict[str, str]]:
    """(config, field -> where its value came from). `layers`: (source name, settings) highest first, e.g.
    [("command line", options), ("preset NAME", its settings)]; a None value is "not given". Below them: the
    checkpoint sidecar's `sampler` ("sidecar"), the adapter's defaults for its family
    (`model.extra["sampler_defaults"]`: Dream's plan and filters; "adapter NAME"), then the defaults
    (docs/conventions.md; "default"). A checkpoint without sidecar settings has no block layout of its own:
    there `block_length` and `steps` default to the gen length (one block, one token per step)."""
    base = asdict(SamplerConfig())
    source = {k: "default" for k in base}
    adapter = getattr(model, "adapter", None) or getattr(model, "adapter_name", None) or "defaults"
    family = ((getattr(model, "extra", None) or {}).get("sampler_defaults")) or {}
    base.update(family)
    source.update({k: f"adapter {adapter}" for k in family if k in source})
    side = (getattr(model, "sidecar", None) or {}).get("sampler") or {}
    given: dict[str, Any] = {}
    given_from: dict[str, str] = {}
    for name, values in reversed(list(layers)):  # the lowest first, so a higher layer overwrites it
        for k, v in (values or {}).items():
            if v is not None and k in base:
                given[k], given_from[k] = v, name
    if not side:
        g = given.get("gen_length", base["gen_length"])
        base.update(block_length=g, steps=g)
        source.update(block_length="default (the gen length: one block)", steps="default (the gen length)")
    base.update({k: v for k, v in side.items() if k in base})
    source.update({k: "sidecar" for k in side if k in base})
    base.update(given)
    source.update(given_from)
    return SamplerConfig.from_dict(base).validate(), source


def resolve_sampler(overrides: dict[str, Any] | None, model=None) -> SamplerConfig:
    """`overrides` (options given; None = not given) over the checkpoint's sidecar, its adapter's defaults
    and the defaults: `resolve_sampler_sources` with one layer."""
    return resolve_sampler_sources([("command line", overrides)], model)[0]
