"""The objectives alone: canvases, CE, the two CTC collapses (against brute force), gradients."""

import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F

from mdlm_probe.core.collapse import collapse_ids
from mdlm_probe.tasks.objectives import ce_canvas, ce_loss, ctc_loss, mask_canvas, slack_canvas, surface_ctc_nll

SLACK, EOS = 0, 9


def test_ce_on_hand_computed_case():
    # One example, L = R = 2, V = 2; position 0 masked, position 1 not; t = 0.5.
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, -5.0]]])  # p(token 1 at pos 0) = 3/4
    canvas = torch.tensor([[1, 0]])
    masked = torch.tensor([[True, False]])
    t = torch.tensor([0.5])
    expected = -math.log(0.75) / 0.5 / 2  # CE / t / R
    assert ce_loss(logits, canvas, masked, t, R=2).item() == pytest.approx(expected, rel=1e-6)


def test_ce_canvas_pads_with_eos():
    assert ce_canvas([4, 5, EOS], 5, EOS) == [4, 5, EOS, EOS, EOS]


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
def test_slack_canvas_collapses_to_its_target(collapse):
    rng = random.Random(0)
    for _ in range(300):
        target = [rng.choice([1, 2, 3]) for _ in range(rng.randint(1, 8))] + [EOS]
        need = len(target) + sum(a == b for a, b in zip(target, target[1:]))
        canvas = slack_canvas(target, need + rng.randint(0, 6), SLACK, collapse, rng)
        # collapse_ids cuts at EOS, so compare with EOS kept as an ordinary symbol
        assert collapse_ids(canvas, collapse, SLACK) == target
        assert canvas[0] != SLACK  # slacks go after tokens (interior and tail)


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
def test_slack_canvas_bounds_random_gaps(collapse):
    rng = random.Random(2)
    target = [4, 5, 5, 6, EOS]
    sep = 1 if collapse == "ctc" else 0  # the ctc map needs one slack between the two 5s
    # max_gaps=0: the canonical canvas, target packed left and the rest after EOS
    assert slack_canvas(target, 9, SLACK, collapse, rng, max_gaps=0) == [4, 5] + [SLACK] * sep + [5, 6, EOS] + [SLACK] * (4 - sep)
    counts = set()
    for _ in range(300):
        canvas = slack_canvas(target, 12, SLACK, collapse, rng, max_gaps=2)
        assert collapse_ids(canvas, collapse, SLACK) == target
        interior = canvas[: canvas.index(EOS)].count(SLACK) - sep
        counts.add(interior)
    assert counts == {0, 1, 2}  # a uniform count up to the bound, never more


def test_ctc_canvas_separates_repeats_so_zeros_survive():
    canvas = slack_canvas([1, 0 + 5, 5, EOS], 4 + 1, SLACK, "ctc", random.Random(1))
    assert canvas == [1, 5, SLACK, 5, EOS]
    assert collapse_ids([1, 5, 5, EOS], "ctc", SLACK) == [1, 5, EOS]  # without it "100" -> "10"


def _brute_force(lp, target, collapse):
    """-log sum over all length-T paths whose collapse is the target."""
    T, V = lp.shape
    total = 0.0
    for path in itertools.product(range(V), repeat=T):
        if collapse_ids(list(path), collapse, SLACK) == target:
            total += math.exp(sum(lp[t, s].item() for t, s in enumerate(path)))
    return -math.log(total)


@pytest.mark.parametrize("collapse", ["ctc", "surface"])
def test_ctc_terms_equal_brute_force(collapse):
    torch.manual_seed(0)
    B, T, V = 2, 5, 3
    logits = torch.randn(B, T, V, dtype=torch.float64)
    targets = torch.tensor([[1, 1, 2], [2, 1, 0]])
    lengths = torch.tensor([3, 2])
    got = ctc_loss(logits, slice(0, None), targets, lengths, SLACK, collapse)
    lp = logits.log_softmax(-1)
    want = sum(_brute_force(lp[b], targets[b, : lengths[b]].tolist(), collapse) / lengths[b].item() for b in range(B)) / B
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_ctc_collapse_uses_torch_ctc_loss():
    torch.manual_seed(1)
    logits = torch.randn(3, 7, 4)
    targets, lengths = torch.tensor([[1, 2, 3], [2, 2, 0], [3, 0, 0]]), torch.tensor([3, 2, 1])
    ref = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, torch.full((3,), 7), lengths, blank=SLACK)
    assert ctc_loss(logits, slice(0, None), targets, lengths, SLACK, "ctc").item() == pytest.approx(ref.item(), rel=1e-6)


def test_surface_forward_gradcheck():
    torch.manual_seed(2)
    x = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    targets, lengths = torch.tensor([[1, 1, 3], [2, 3, 0]]), torch.tensor([3, 2])
    assert torch.autograd.gradcheck(lambda z: surface_ctc_nll(z.log_softmax(-1), targets, lengths, SLACK), (x,))


def test_surface_impossible_alignment_is_infinite_not_nan():
    lp = torch.zeros(1, 2, 3).log_softmax(-1)
    nll = surface_ctc_nll(lp, torch.tensor([[1, 2, 1]]), torch.tensor([3]), SLACK)  # 3 tokens, 2 positions
    assert nll.item() > 1e30 and not torch.isnan(nll).any()


def test_mask_canvas_masks_only_response_at_rate_t():
    g = torch.Generator().manual_seed(0)
    canvas = torch.arange(2000).reshape(2, 1000) % 7 + 3
    response = torch.zeros(2, 1000, dtype=torch.bool)
    response[:, 100:] = True
    noisy, masked, t = mask_canvas(canvas, response, mask_id=1, gen=g)
    assert not masked[:, :100].any() and (noisy[masked] == 1).all() and torch.equal(noisy[~masked], canvas[~masked])
    for b in range(2):
        assert masked[b].float().sum().item() / 900 == pytest.approx(t[b].item(), abs=0.06)
