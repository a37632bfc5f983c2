"""CTC+CE at a large vocabulary: the CTC term reads only the `<slack>` and target columns of the log-probs.

`ctc_loss` must give the value and the gradient of the plain computation (log_softmax over V, then
torch's ctc_loss or the surface forward pass) without keeping a (B, R, V) float32 tensor for backward.
"""

import pytest
import torch
import torch.nn.functional as F

from mdlm_probe.tasks import objectives
from mdlm_probe.tasks.objectives import ce_ctc_losses, ce_loss, ctc_loss, log_prob_columns, surface_ctc_nll

SLACK = 3


def full_vocab_reference(logits, sl, targets, lengths, slack_id, collapse):
    """The computation before the column-only path: a full log_softmax over V (kept in float64 here)."""
    lp = logits[:, sl].double().log_softmax(-1)  # (B, R, V)
    B, R, _ = lp.shape
    if collapse == "ctc":
        return F.ctc_loss(lp.transpose(0, 1), targets, torch.full((B,), R, dtype=torch.long), lengths,
                          blank=slack_id, reduction="mean", zero_infinity=False)
    return (surface_ctc_nll(lp, targets, lengths, slack_id) / lengths).mean()


def batch(V=40, B=3, L=14, P=3, U=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, L, V, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(4, V, (B, U), generator=g)
    targets[0, 1] = targets[0, 0]  # a repeat: the ctc collapse needs a slack between them
    targets[1, 2:] = 0  # padding past the length
    lengths = torch.tensor([U, 2, U - 1])
    return logits, slice(P, None), targets, lengths


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
@pytest.mark.parametrize("block", [1 << 24, 7])  # one block per example, and blocks that split positions
def test_column_path_equals_full_log_softmax(collapse, block, monkeypatch):
    monkeypatch.setattr(objectives._LogProbColumns, "BLOCK", block * 40)
    logits, sl, targets, lengths = batch()
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    new = ctc_loss(a, sl, targets, lengths, SLACK, collapse)
    old = full_vocab_reference(b, sl, targets, lengths, SLACK, collapse)
    new.backward()
    old.backward()
    assert new.item() == pytest.approx(old.item(), rel=1e-10)
    assert torch.allclose(a.grad, b.grad, atol=1e-10), (a.grad - b.grad).abs().max()
    assert a.grad[:, :3].abs().max() == 0  # prompt positions get no gradient


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
def test_column_path_in_float32_matches(collapse):
    logits, sl, targets, lengths = batch(seed=1)
    a = logits.float().requires_grad_()
    b = logits.clone().requires_grad_()
    new = ctc_loss(a, sl, targets, lengths, SLACK, collapse)
    old = full_vocab_reference(b, sl, targets, lengths, SLACK, collapse)
    new.backward()
    old.backward()
    assert new.item() == pytest.approx(old.item(), rel=1e-5)
    assert torch.allclose(a.grad.double(), b.grad, atol=1e-5)


def test_log_prob_columns_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 9, generator=g, dtype=torch.float64, requires_grad=True)
    cols = torch.randint(0, 9, (2, 4, 3), generator=g)
    assert torch.allclose(log_prob_columns(x, cols), x.log_softmax(-1).gather(2, cols))
    assert torch.autograd.gradcheck(lambda z: log_prob_columns(z, cols), (x,))


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
def test_no_full_vocab_float32_tensor_is_kept(collapse):
    """bfloat16 logits, as a bf16 run hands them over: nothing V-wide in float32 is saved for backward (CE, CTC,
    and both in one pass)."""
    logits, sl, targets, lengths = batch(V=512, L=20)
    x = logits.bfloat16().requires_grad_()
    saved = []

    def pack(t):
        saved.append((t.dtype, t.numel()))
        return t

    canvas, masked, t, R = ce_batch(x)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = ctc_loss(x, sl, targets, lengths, SLACK, collapse) + ce_loss(x, canvas, masked, t, R)
        loss = loss + sum(ce_ctc_losses(x, canvas, masked, t, R, sl, targets, lengths, SLACK, collapse))
    B, L, V = x.shape
    wide = [(d, n) for d, n in saved if d != torch.bfloat16 and n >= B * (L - sl.start) * V]
    assert not wide, wide
    loss.backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()


def ce_reference(logits, canvas, masked, t, R):
    """CE the plain way: cross_entropy over the full vocabulary."""
    tok = F.cross_entropy(logits.double().transpose(1, 2), canvas, reduction="none")  # (B, L)
    return ((tok * masked).sum(1) / t / R).mean()


def ce_batch(logits):
    B, L, V = logits.shape
    g = torch.Generator().manual_seed(5)
    canvas = torch.randint(0, V, (B, L), generator=g)
    masked = torch.rand(B, L, generator=g) < 0.5
    masked[:, :3] = False
    return canvas, masked, torch.tensor([0.3, 0.9, 0.5]), L - 3


def test_ce_column_path_equals_cross_entropy():
    logits, _, _, _ = batch()
    canvas, masked, t, R = ce_batch(logits)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    new, old = ce_loss(a, canvas, masked, t, R), ce_reference(b, canvas, masked, t, R)
    new.backward()
    old.backward()
    assert new.item() == pytest.approx(old.item(), rel=1e-10)
    assert torch.allclose(a.grad, b.grad, atol=1e-12)


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
def test_one_pass_equals_the_two_terms(collapse):
    """ce_ctc_losses (the training step's single pass over V) = ce_loss and ctc_loss, value and gradient."""
    logits, sl, targets, lengths = batch(seed=3)
    canvas, masked, t, R = ce_batch(logits)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ce_a, ctc_a = ce_ctc_losses(a, canvas, masked, t, R, sl, targets, lengths, SLACK, collapse)
    ce_b = ce_reference(b, canvas, masked, t, R)
    ctc_b = full_vocab_reference(b, sl, targets, lengths, SLACK, collapse)
    (ce_a + 0.7 * ctc_a).backward()
    (ce_b + 0.7 * ctc_b).backward()
    assert ce_a.item() == pytest.approx(ce_b.item(), rel=1e-10)
    assert ctc_a.item() == pytest.approx(ctc_b.item(), rel=1e-10)
    assert torch.allclose(a.grad, b.grad, atol=1e-10)


def test_full_log_softmax_would_keep_one():
    """The check above can fail: the plain computation keeps a (B, R, V) float32 log_softmax."""
    logits, sl, targets, lengths = batch(V=512, L=20)
    x = logits.bfloat16().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((t.dtype, t.numel())) or t, lambda t: t):
        F.ctc_loss(x[:, sl].float().log_softmax(-1).transpose(0, 1), targets, torch.full((3,), 17), lengths,
                   blank=SLACK)
    assert any(d == torch.float32 and n >= 3 * 17 * 512 for d, n in saved)
