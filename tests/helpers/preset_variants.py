"""Shipped presets with their protocol fields blanked, for tests of how presets are applied (not of protocols)."""

from __future__ import annotations

import dataclasses


def without_protocol(monkeypatch, name: str, also: tuple[str, ...] = ()) -> None:
    """Preset `name` as shipped, but with the protocol fields (prompt format, stop rule, extraction, ...; all but
    dtype) and the fields in `also` marked unpublished: its sampler, chat, few-shot and dtype stay."""
    import mdlm_probe.tasks.presets as presets

    real = presets.load_presets()
    p = real[name]
    drop = set(getattr(presets, "PROTOCOL_FIELDS", ())) - {"dtype"} | set(also)
    variant = dataclasses.replace(p, settings={k: None if k in drop else v for k, v in p.settings.items()},
                                  sources={k: "not published (test copy)" if k in drop else v
                                           for k, v in p.sources.items()})
    monkeypatch.setattr(presets, "load_presets", lambda *a: {**real, name: variant})
