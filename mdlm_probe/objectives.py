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


def slack_canvas(target: list[int], R: int, slack_id: int, collapse: str, rng: random.Random,
                 max_gaps: int = -1) -> list[int]:
    """CTC+CE canvas: the target with R - len(target) `<slack>` tokens inserted after its tokens.

    With the `ctc` collapse the canvas must be a valid CTC path: a `<slack>` goes between every pair of
    equal adjacent tokens first, else "100" would collapse to "10" and the CE term would teach a canvas
    the CTC term calls wrong. Then up to `max_gaps` slacks (a uniform count; -1 = all of them) go to
    random gaps after tokens; the rest pad the tail after the last token (EOS). Random gaps put `<slack>`
    inside the canvas the model reads, but each costs accuracy: every position's target becomes a blur
    over alignments (measured on the tiny model: 0-1% held-out after 300 steps with all gaps random).
    """
    groups: list[list[int]] = [[t] for t in target]  # each token followed by the slacks after it
    if collapse == "ctc":
        for i in range(len(target) - 1):
            if target[i] == target[i + 1]:
                groups[i].append(slack_id)
    n_free = R - sum(len(g) for g in groups)
    if n_free < 0:
        raise ValueError(f"target needs {R - n_free} positions with separators, canvas has {R}")
    n_random = n_free if max_gaps < 0 else rng.randint(0, min(max_gaps, n_free))
    for _ in range(n_random):
        groups[rng.randrange(len(groups))].append(slack_id)
    groups[-1].extend([slack_id] * (n_free - n_random))
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
    being `<slack>`. log_probs (B, T, V); targets (B, U) padded; target_lengths (B,). Returns (B,).
    The forward-backward pass below gives the gradient in closed form, much cheaper than autograd
    through T sequential steps.
    """
    return _SurfaceCTC.apply(log_probs, targets, target_lengths, slack_id)


class _SurfaceCTC(torch.autograd.Function):
    """Forward algorithm in log space, vectorised over batch and target positions, a loop over time:
         alpha[t+1, j] = logaddexp(alpha[t, j] + lp[t, slack], alpha[t, j-1] + lp[t, y_j]),
    and the backward (beta) recursion for the posteriors: d(-log Z)/d lp[t, v] = -P(v at t | target)."""

    @staticmethod
    def forward(ctx, log_probs, targets, target_lengths, slack_id):
        B, T, _ = log_probs.shape
        U = targets.shape[1]
        lp = log_probs.detach()
        emit = lp.gather(2, targets[:, None, :].expand(B, T, U))  # (B, T, U)
        blank = lp[:, :, slack_id]  # (B, T)
        neg = torch.finfo(lp.dtype).min
        alphas = lp.new_full((T + 1, B, U + 1), neg)  # alphas[t]: t positions read, j tokens emitted
        alphas[0, :, 0] = 0.0
        for t in range(T):
            a = alphas[t]
            alphas[t + 1, :, 0] = a[:, 0] + blank[:, t]
            alphas[t + 1, :, 1:] = torch.logaddexp(a[:, 1:] + blank[:, t, None], a[:, :-1] + emit[:, t])
        log_z = alphas[T].gather(1, target_lengths[:, None]).squeeze(1)  # (B,)
        ctx.save_for_backward(alphas, emit, blank, targets, target_lengths, log_z)
        ctx.slack_id, ctx.vocab = slack_id, log_probs.shape[2]
        return -log_z

    @staticmethod
    def backward(ctx, grad_out):
        alphas, emit, blank, targets, lengths, log_z = ctx.saved_tensors
        T1, B, U1 = alphas.shape
        T, U = T1 - 1, U1 - 1
        neg = torch.finfo(alphas.dtype).min
        beta = alphas.new_full((B, U + 1), neg)
        beta.scatter_(1, lengths[:, None], 0.0)  # all target tokens emitted at the end
        post_blank = alphas.new_zeros((B, T))
        post_emit = alphas.new_zeros((B, T, U))
        ok = torch.isfinite(log_z) & (log_z > neg / 2)  # impossible alignments get no gradient
        lz = torch.where(ok, log_z, torch.zeros_like(log_z))[:, None]
        for t in range(T - 1, -1, -1):
            a = alphas[t]  # (B, U+1)
            stay = a + blank[:, t, None] + beta  # slack at t, j unchanged
            move = a[:, :-1] + emit[:, t] + beta[:, 1:]  # token j+1 emitted at t
            post_blank[:, t] = (stay - lz).exp().sum(1)
            post_emit[:, t] = (move - lz).exp()
            beta = torch.cat([torch.logaddexp(blank[:, t, None] + beta[:, :-1], emit[:, t] + beta[:, 1:]),
                              blank[:, t, None] + beta[:, -1:]], 1)
        grad = alphas.new_zeros((B, T, ctx.vocab))
        grad[:, :, ctx.slack_id] -= post_blank
        grad.scatter_add_(2, targets[:, None, :].expand(B, T, U), -post_emit)
        grad = grad * (grad_out * ok)[:, None, None]
        return grad, None, None, None


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
