"""Batch compaction (`SamplerConfig.compact`): rows with nothing left to commit leave the forward batch.

A batch decodes until its slowest row is done; with a confidence threshold most rows finish early and, until
now, were still forwarded at every step. A row whose canvas holds no [MASK] up to the current block's end
commits nothing at this step (the selectors cap every row's count at its masks open, its confidences are all
-inf, its proposals are replaced by its own tokens), so its logits are never used: the exact forward runs the
other rows only. The finished rows' slots in the (B, L, V) logits hold zeros, so every later stage (and every
random draw, T > 0 and the random rules) sees the same shapes as without compaction and draws the same numbers.
The rows that run get the same logits they would get in the full batch wherever the model is batch-invariant
(tests/decoding/test_compaction.py checks tokens against the uncompacted decode).

Refused where the rows' logits are read otherwise: the block caches (a stored cache holds the full batch's
rows and the adapter contract has no row selection), a repair stage (it reads committed tokens' logits), the
cache-drift meter (it compares every row) and classifier-free guidance (its unconditional copies keep
masked prompts, so no row would leave).
"""

from __future__ import annotations

import torch

from mdlm_probe.core.exceptions import BadInput


def check(cfg) -> None:
    if not getattr(cfg, "compact", False):
        return
    why = ("cache " + repr(cfg.cache) if cfg.cache != "none" else "a repair stage" if cfg.repair
           else "the cache-drift meter" if cfg.measure_cache_drift else "cfg-scale > 0" if cfg.cfg_scale > 0
           else None)
    if why:
        raise BadInput(f"--compact needs --cache none, no repair, no drift meter and no guidance (got {why})")


def waiting_rows(x: torch.Tensor, end: int, mask_id: int) -> torch.Tensor:
    """(B,) bool: rows with a [MASK] before `end` (the current block's end): the ones that may commit now."""
    return (x[:, :end] == mask_id).any(1)


class Compactor:
    """Runs the forward on the waiting rows only and scatters their logits into a (B, L, V) buffer of zeros.

    The buffer is reused across steps (as the block caches reuse their stored logits): the stages after the
    forward are pure, and a fork clones the logits it keeps."""

    def __init__(self, mask_id: int):
        self.mask_id = mask_id
        self.buffer: torch.Tensor | None = None
        self.ran: torch.Tensor | None = None  # (B,) the rows whose logits the buffer holds

    def __call__(self, model, x: torch.Tensor, attention_mask: torch.Tensor | None, end: int):
        keep = waiting_rows(x, end, self.mask_id)  # (B,)
        if bool(keep.all()) or not bool(keep.any()):
            return model(x, attention_mask=attention_mask), x.numel()
        idx = keep.nonzero().squeeze(1)
        part = model(x[idx], attention_mask=None if attention_mask is None else attention_mask[idx])  # (B', L, V)
        B, L, V = x.shape[0], x.shape[1], part.shape[-1]
        if self.buffer is None or self.buffer.shape != (B, L, V) or self.buffer.dtype != part.dtype:
            self.buffer, self.ran = part.new_zeros((B, L, V)), keep.new_zeros(B)
        gone = self.ran & ~keep
        if bool(gone.any()):
            self.buffer[gone] = 0  # rows that ran before and are done now: no stale logits left in their slots
        self.buffer[idx] = part
        self.ran = keep
        return self.buffer, int(idx.numel()) * L
