"""Training objectives: LLaDA-style masked CE, and the seed's CTC+CE with `<slack>` as the CTC blank.

Shapes: B batch, P prompt length (left-padded), R response length, V vocab, U target length.
A batch is built once (`build_canvas`) and scored by `ce_loss` / `ctc_loss` from one forward pass.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------- canvases
def ce_canvas(target: list[int], R: int, eos_id: int) -> list[int]:
    """CE canvas: the target (response + EOS) padded with EOS to R, as in LLaDA SFT."""
    assert len(target) <= R, "target longer than the response canvas"
    return target + [eos_id] * (R - len(target))


def slack_canvas(target: list[int], R: int, slack_id: int, collapse: str, rng: random.Random) -> list[int]:
    """CTC+CE canvas: the target with R - len(target) `<slack>` tokens inserted at random gaps.

    With the `ctc` collapse the canvas must be a valid CTC path: a `<slack>` goes between every pair of
    equal adjacent tokens first, else "100" would collapse to "10" and the CE term would teach a canvas
    the CTC term calls wrong. Remaining slacks go to random gaps after each token (interior and tail).
    """
    groups: list[list[int]] = [[t] for t in target]  # each token followed by the slacks after it
    if collapse == "ctc":
        for i in range(len(target) - 1):
            if target[i] == target[i + 1]:
                groups[i].append(slack_id)
    n_free = R - sum(len(g) for g in groups)
    if n_free < 0:
        raise ValueError(f"target needs {R - n_free} positions with separators, canvas has {R}")
    for _ in range(n_free):
        groups[rng.randrange(len(groups))].append(slack_id)
    return [t for g in groups for t in g]


def mask_canvas(canvas: torch.Tensor, response: torch.Tensor, mask_id: int, gen: torch.Generator,
                eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask each response position with probability t ~ U(eps, 1) drawn per example.

    canvas (B, L) long; response (B, L) bool. Returns noised canvas, masked (B, L) bool, t (B,).
    """
    B, L = canvas.shape
    t = eps + (1 - eps) * torch.rand(B, generator=gen)  # (B,)
    masked = (torch.rand(B, L, generator=gen) < t[:, None]) & response  # (B, L)
    return torch.where(masked, torch.full_like(canvas, mask_id), canvas), masked, t


# ----------------------------------------------------------------------------------------- losses
def ce_loss(logits: torch.Tensor, canvas: torch.Tensor, masked: torch.Tensor, t: torch.Tensor, R: int) -> torch.Tensor:
    """Masked-diffusion CE: CE on masked positions weighted 1/t, divided by R, averaged over the batch.

    logits (B, L, V); canvas (B, L) the clean labels; masked (B, L); t (B,).
    """
    tok = F.cross_entropy(logits.float().transpose(1, 2), canvas, reduction="none")  # (B, L)
    per_example = (tok * masked).sum(1) / t / R  # (B,)
    return per_example.mean()


def surface_ctc_nll(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                    slack_id: int) -> torch.Tensor:
    """-log p(target | log_probs) under the surface collapse (only `<slack>` is deleted, no merging).

    An alignment places the U target tokens at strictly increasing positions, every other position
    being `<slack>`. Forward algorithm in log space, vectorised over batch and target positions:
      alpha[t+1, j] = logaddexp(alpha[t, j] + lp[t, slack], alpha[t, j-1] + lp[t, y_j]).
    log_probs (B, T, V); targets (B, U) padded; target_lengths (B,). Returns (B,).
    """
    B, T, _ = log_probs.shape
    U = targets.shape[1]
    emit = log_probs.gather(2, targets[:, None, :].expand(B, T, U))  # (B, T, U)
    blank = log_probs[:, :, slack_id]  # (B, T)
    neg_inf = torch.finfo(log_probs.dtype).min
    alpha = torch.full((B, U + 1), neg_inf, dtype=log_probs.dtype, device=log_probs.device)
    alpha = torch.cat([torch.zeros_like(alpha[:, :1]), alpha[:, 1:]], 1)  # (B, U+1): nothing emitted yet
    for step in range(T):
        stay = alpha + blank[:, step, None]  # emit <slack>
        move = alpha[:, :-1] + emit[:, step]  # emit the next target token
        alpha = torch.cat([stay[:, :1], torch.logaddexp(stay[:, 1:], move)], 1)
    return -alpha.gather(1, target_lengths[:, None]).squeeze(1)


def ctc_loss(logits: torch.Tensor, response_slice: slice, targets: torch.Tensor, target_lengths: torch.Tensor,
             slack_id: int, collapse: str) -> torch.Tensor:
    """CTC term: -log p(target | all R response positions) / target length, averaged over the batch.

    logits (B, L, V); targets (B, U) padded, target_lengths (B,). No 1/t weight (it sees every position).
    """
    lp = logits[:, response_slice].float().log_softmax(-1)  # (B, R, V)
    B, R, _ = lp.shape
    if collapse == "ctc":
        return F.ctc_loss(lp.transpose(0, 1), targets, torch.full((B,), R, dtype=torch.long), target_lengths,
                          blank=slack_id, reduction="mean", zero_infinity=False)
    if collapse == "surface":
        return (surface_ctc_nll(lp, targets, target_lengths, slack_id) / target_lengths).mean()
    raise ValueError(f"unknown collapse {collapse!r}")
