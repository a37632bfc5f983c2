"""Training objectives: LLaDA-style masked CE, and the seed's CTC+CE with `<slack>` as the CTC blank.

Shapes: B batch, P prompt length (left-padded), R response length, V vocab, U target length.
A batch is built once and scored by `ce_loss` / `ctc_loss` (or both at once, `ce_ctc_losses`) from one
forward pass. The losses read only the vocabulary columns they need (`log_prob_columns`): at LLaDA's 126,464
tokens no (B, L, V) float32 log_softmax is ever kept (docs/training.md, "CTC+CE at a 126k vocabulary").
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

    logits (B, L, V); canvas (B, L) the clean labels; masked (B, L); t (B,). Reads one column per position
    (`log_prob_columns`), so no (B, L, V) float32 log_softmax is kept for backward.
    """
    return _ce_from(log_prob_columns(logits, canvas[..., None])[..., 0], masked, t, R)


def _ce_from(lp_label: torch.Tensor, masked: torch.Tensor, t: torch.Tensor, R: int) -> torch.Tensor:
    """lp_label (B, L): log p(clean token) at each position -> the CE term."""
    tok = -lp_label.masked_fill(~masked, 0.0)  # (B, L); unmasked positions contribute nothing
    return (tok.sum(1) / t / R).mean()


def surface_ctc_nll(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                    slack_id: int) -> torch.Tensor:
    """-log p(target | log_probs) under the surface collapse (only `<slack>` is deleted, no merging).

    An alignment places the U target tokens at strictly increasing positions, every other position
    being `<slack>`. log_probs (B, T, V); targets (B, U) padded; target_lengths (B,). Returns (B,).
    Only the target and `<slack>` columns are read (`ctc_loss` passes just those, see `_SurfaceCTC`).
    """
    B, T, _ = log_probs.shape
    emit = log_probs.gather(2, targets[:, None, :].expand(B, T, targets.shape[1]))  # (B, T, U)
    return _SurfaceCTC.apply(emit, log_probs[:, :, slack_id], target_lengths)


class _SurfaceCTC(torch.autograd.Function):
    """Forward algorithm in log space, vectorised over batch and target positions, a loop over time:
         alpha[t+1, j] = logaddexp(alpha[t, j] + lp[t, slack], alpha[t, j-1] + lp[t, y_j]),
    and the backward (beta) recursion for the posteriors: d(-log Z)/d lp[t, v] = -P(v at t | target), in closed
    form, much cheaper than autograd through T sequential steps. Inputs are the gathered columns only:
    emit (B, T, U) = lp[t, y_j], blank (B, T) = lp[t, slack]."""

    @staticmethod
    def forward(ctx, emit, blank, target_lengths):
        emit, blank = emit.detach(), blank.detach()
        B, T, U = emit.shape
        neg = torch.finfo(emit.dtype).min
        alphas = emit.new_full((T + 1, B, U + 1), neg)  # alphas[t]: t positions read, j tokens emitted
        alphas[0, :, 0] = 0.0
        for t in range(T):
            a = alphas[t]
            alphas[t + 1, :, 0] = a[:, 0] + blank[:, t]
            alphas[t + 1, :, 1:] = torch.logaddexp(a[:, 1:] + blank[:, t, None], a[:, :-1] + emit[:, t])
        log_z = alphas[T].gather(1, target_lengths[:, None]).squeeze(1)  # (B,)
        ctx.save_for_backward(alphas, emit, blank, target_lengths, log_z)
        return -log_z

    @staticmethod
    def backward(ctx, grad_out):
        alphas, emit, blank, lengths, log_z = ctx.saved_tensors
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
        scale = (grad_out * ok)  # (B,)
        return -post_emit * scale[:, None, None], -post_blank * scale[:, None], None


class _LogProbColumns(torch.autograd.Function):
    """log_softmax(x)[..., cols] from logits x (B, T, V) without a (B, T, V) log_softmax tensor.

    Forward: logsumexp over V once, in blocks of positions, then gather the K columns and subtract:
    (B, T, K) out, in float32 (float64 for float64 logits). Saved for backward: x itself (the caller's
    logits, not a copy), cols and the (B, T) logsumexp. Backward writes d/dx = scatter(g) - softmax(x) * sum(g)
    block by block into one tensor of x's dtype (the gradient autograd would hand the logits anyway).
    At V = 126,464 this is what keeps CTC+CE's peak near CE's (analyses/bench_objectives.py)."""

    BLOCK = 1 << 24  # elements of V-wide float32 work per block (64 MB)

    @staticmethod
    def _blocks(x):
        B, T, V = x.shape
        step = max(1, _LogProbColumns.BLOCK // max(V, 1))
        for b in range(B):
            for t0 in range(0, T, step):
                yield b, slice(t0, min(T, t0 + step))

    @staticmethod
    def forward(ctx, x, cols):
        dt = torch.promote_types(x.dtype, torch.float32)
        lse = x.new_empty(x.shape[:2], dtype=dt)  # (B, T)
        with torch.no_grad():
            for b, ts in _LogProbColumns._blocks(x):
                lse[b, ts] = torch.logsumexp(x[b, ts].to(dt), -1)
        ctx.save_for_backward(x, cols, lse)
        return x.detach().gather(2, cols).to(dt) - lse[..., None]  # (B, T, K)

    @staticmethod
    def backward(ctx, g):
        x, cols, lse = ctx.saved_tensors
        grad = torch.empty_like(x)
        total = g.sum(-1, keepdim=True)  # (B, T, 1)
        for b, ts in _LogProbColumns._blocks(x):
            p = (x[b, ts].to(lse.dtype) - lse[b, ts, None]).exp_()  # (block, V) softmax
            p.mul_(-total[b, ts])
            p.scatter_add_(1, cols[b, ts], g[b, ts].to(p.dtype))
            grad[b, ts] = p
        return grad, None


def log_prob_columns(logits: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits, -1).gather(2, cols), computed as `_LogProbColumns` does. logits (B, T, V); cols (B, T, K)."""
    return _LogProbColumns.apply(logits, cols)


def _ctc_plan(targets: torch.Tensor, target_lengths: torch.Tensor, slack_id: int, collapse: str, B: int, L: int):
    """The columns the CTC term reads, cols (B, L, K), and `finish(lp)`: lp (B, R, K) those columns' log-probs at
    the response positions -> the CTC term. `ctc`: the batch's class set [distinct target tokens and `<slack>`],
    targets renumbered into it (torch's ctc_loss takes any class set). `surface`: [`<slack>`, y_1 .. y_U]."""
    if collapse == "ctc":
        valid = torch.arange(targets.shape[1], device=targets.device)[None] < target_lengths[:, None]  # (B, U)
        slack = torch.tensor([slack_id], device=targets.device, dtype=targets.dtype)
        classes = torch.unique(torch.cat([slack, targets[valid]]))  # (K,) sorted
        K = classes.numel()
        compact = torch.searchsorted(classes, targets).clamp(max=K - 1)  # (B, U); padding is never read
        blank = int(torch.searchsorted(classes, slack))

        def finish(lp):  # (B, R, K)
            R = lp.shape[1]
            nll = F.ctc_loss(lp.transpose(0, 1), compact, torch.full((B,), R, dtype=torch.long), target_lengths,
                             blank=blank, reduction="none", zero_infinity=False)  # (B,)
            # torch's ctc_loss backward returns exp(lp) - posterior: the gradient for log-probs normalised over
            # the classes given (it expects log_softmax's backward next). Ours cover K of V classes, so the
            # exp(lp) part is taken back out: same value, gradient -posterior.
            e = (lp.detach().exp() * lp).sum((1, 2))  # (B,)
            return ((nll - e + e.detach()) / target_lengths.clamp(min=1)).mean()  # torch's "mean" reduction

        return classes[None, None, :].expand(B, L, K), finish
    if collapse == "surface":
        cols = torch.cat([torch.full_like(targets[:, :1], slack_id), targets], 1)  # (B, 1 + U)

        def finish(lp):  # (B, R, 1 + U)
            return (_SurfaceCTC.apply(lp[:, :, 1:], lp[:, :, 0], target_lengths) / target_lengths).mean()

        return cols[:, None, :].expand(B, L, cols.shape[1]), finish
    raise ValueError(f"unknown collapse {collapse!r}")


def ctc_loss(logits: torch.Tensor, response_slice: slice, targets: torch.Tensor, target_lengths: torch.Tensor,
             slack_id: int, collapse: str) -> torch.Tensor:
    """CTC term: -log p(target | all R response positions) / target length, averaged over the batch.

    logits (B, L, V); targets (B, U) padded, target_lengths (B,). No 1/t weight (it sees every position).
    Only the `<slack>` and target columns of the log-probabilities are computed (a (B, L, K) tensor, K the
    distinct target tokens of the batch + 1), never a (B, L, V) float32 one: see `_LogProbColumns`.
    """
    cols, finish = _ctc_plan(targets, target_lengths, slack_id, collapse, *logits.shape[:2])
    return finish(log_prob_columns(logits, cols)[:, response_slice])


def ce_ctc_losses(logits: torch.Tensor, canvas: torch.Tensor, masked: torch.Tensor, t: torch.Tensor, R: int,
                  response_slice: slice, targets: torch.Tensor, target_lengths: torch.Tensor, slack_id: int,
                  collapse: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE term, CTC term) of one CTC+CE step, equal to `ce_loss(...)` and `ctc_loss(...)`, from one pass over V:
    one logsumexp and one (B, L, V) gradient for the logits instead of one per term (the training step's path)."""
    B, L = canvas.shape
    cols, finish = _ctc_plan(targets, target_lengths, slack_id, collapse, B, L)
    lp = log_prob_columns(logits, torch.cat([canvas[..., None], cols], -1))  # (B, L, 1 + K)
    return _ce_from(lp[..., 0], masked, t, R), finish(lp[:, response_slice, 1:])
