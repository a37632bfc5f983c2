"""Cache fidelity per sample (`SamplerConfig.measure_cache_drift`): how far a cached forward's logits are from
an exact full forward, on the rows that can commit.

`DriftMeter` wraps the configured forward policy. Every `drift_every`-th step it also runs the exact forward
(the same policy with `cache="none"`, guidance included) and compares the two on the masked positions of the
current block: KL(exact || cached) of the softmaxed logits (float32, before any logit edit), and top-1
agreement. The cached logits are what it returns, so the decode is exactly the one without the meter (the
exact forward draws no random numbers). Its hook (`DriftMeter.hooks`, run by the loop after each step) then
sees which positions the step committed and counts those whose exact top-1 differs from the committed
token: "the committed token would have differed".

Per sample it keeps running totals in `state.info["cache_drift"][sample_id]` (the record's
`hook_info.cache_drift`, docs/conventions.md): `every`, `steps` (measured), `rows`, `kl_mean`, `kl_max`,
`top1_agree`, `committed` (tokens committed at measured steps) and `committed_differ`.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from mdlm_probe.core.exceptions import BadInput

from .state import StepState

KEY = "cache_drift"


def check(cfg) -> None:
    """The meter compares a cache with the exact forward: it needs a cache, and a positive interval."""
    if not getattr(cfg, "measure_cache_drift", False):
        return
    if cfg.cache == "none":
        raise BadInput("--measure-cache-drift compares a KV cache with the exact forward: give --cache prefix or dual")
    if cfg.drift_every < 1:
        raise BadInput(f"--drift-every {cfg.drift_every} must be >= 1 (measure every k-th step)")


class DriftMeter:
    """A forward policy that returns its inner policy's logits and measures them against `exact` (see above)."""

    def __init__(self, inner, exact, every: int, mask_id: int):
        self.inner, self.exact, self.every, self.mask_id = inner, exact, every, mask_id
        self.resumable = getattr(inner, "resumable", False)
        self.calls = 0
        self.pending: dict | None = None  # the last measured step's exact top-1, for the hook
        self.hooks = [self.record]

    def __call__(self, x: torch.Tensor, start: int, end: int):
        logits, n = self.inner(x, start, end)  # (B, L, V): this drives the decode
        self.calls += 1
        self.pending = None
        if (self.calls - 1) % self.every == 0:
            full, _ = self.exact(x, start, end)  # (B, L, V)
            self.pending = measure(logits, full, x, start, end, self.mask_id)
        return logits, n

    def record(self, st: StepState) -> None:
        """Hook: fold the measured step (if this one was) into each sample's totals."""
        m, self.pending = self.pending, None
        if m is None:
            return
        g0 = st.prompt_len
        done = st.commit_step == st.step  # (B, G) committed by this step
        resp = st.x[:, g0:]  # (B, G)
        exact_top1 = m["exact_top1"][:, g0:]  # (B, G)
        per = st.info.setdefault(KEY, {})
        for b, sid in enumerate(st.sample_ids):
            rows = int(m["rows"][b])
            t = per.setdefault(sid, {"every": self.every, "steps": 0, "rows": 0, "kl_sum": 0.0, "kl_max": 0.0,
                                     "agree": 0, "committed": 0, "committed_differ": 0})
            t["steps"] += 1
            t["rows"] += rows
            t["kl_sum"] += float(m["kl_sum"][b])
            t["kl_max"] = max(t["kl_max"], float(m["kl_max"][b]))
            t["agree"] += int(m["agree"][b])
            t["committed"] += int(done[b].sum())
            t["committed_differ"] += int((done[b] & (exact_top1[b] != resp[b])).sum())
            t["kl_mean"] = round(t["kl_sum"] / t["rows"], 8) if t["rows"] else 0.0
            t["top1_agree"] = round(t["agree"] / t["rows"], 6) if t["rows"] else 1.0


def measure(cached: torch.Tensor, full: torch.Tensor, x: torch.Tensor, start: int, end: int, mask_id: int) -> dict:
    """Per row of the batch, over the masked positions in [start, end): KL(full || cached) summed and max,
    top-1 agreements, row count; and the exact top-1 everywhere (B, L) for the hook."""
    rows = torch.zeros_like(x, dtype=torch.bool)
    rows[:, start:end] = x[:, start:end] == mask_id  # (B, L) the positions that can commit
    lp_c = torch.log_softmax(cached[:, start:end].float(), -1)  # (B, R, V)
    lp_f = torch.log_softmax(full[:, start:end].float(), -1)
    kl = (lp_f.exp() * (lp_f - lp_c)).sum(-1).clamp_min(0.0)  # (B, R); clamp: rounding below 0
    r = rows[:, start:end]
    kl = torch.where(r, kl, torch.zeros_like(kl))
    agree = (cached[:, start:end].argmax(-1) == full[:, start:end].argmax(-1)) & r
    return {"rows": r.sum(1), "kl_sum": kl.sum(1), "kl_max": kl.max(1).values, "agree": agree.sum(1),
            "exact_top1": full.argmax(-1)}


def wrap(forward, model, cfg, attention_mask, prompt_index, build_forward):
    """`forward` wrapped in a meter when the config asks for one, else `forward` itself."""
    if not getattr(cfg, "measure_cache_drift", False):
        return forward
    exact = build_forward(model, replace(cfg, cache="none"), attention_mask, prompt_index)
    return DriftMeter(forward, exact, cfg.drift_every, model.mask_id)

