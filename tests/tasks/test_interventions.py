"""The shift hooks on hand-built canvases (exact expected canvases and trajectories), and inside decoding."""

from __future__ import annotations

import pytest
import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.interventions import Shift, edit_map, num_points, seeded_points
from mdlm_probe.decoding import SamplerConfig, StepState, generate

M = 1  # mask id
P = 3  # prompt length
G = 8
TOKENS = list(range(10, 10 + G))  # a fully committed response: 10 11 ... 17


def make_state(rows=1, response=None, ids=None, step=5):
    resp = torch.tensor([response or TOKENS] * rows)
    x = torch.cat([torch.full((rows, P), 99), resp], 1)  # (B, P + G)
    return StepState(
        x=x, logits=torch.zeros(rows, P + G, 4), step=step, block=0, prompt_len=P, gen_length=G, block_length=G,
        mask_id=M,
        # commit step = position for committed tokens, to see where entries go; -1 under masks
        commit_step=torch.where(resp != M, torch.arange(G).repeat(rows, 1), -1),
        confidence=(torch.arange(G, dtype=torch.float32) / 10 + 0.05).repeat(rows, 1),
        block_of=torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]).repeat(rows, 1),
        sample_ids=ids or [f"s/{i}" for i in range(rows)], info={})


def apply(mode, points, direction="right", **kw):
    st = make_state(**kw)
    Shift(mode=mode, positions=tuple(points), at=0.25, direction=direction)(st)
    return st


# Expected canvases, hand-derived from the definitions (points refer to the canvas before the edit).
CASES = [
    ("insert", (2, 5), "right", [10, 11, M, 12, 13, 14, M, 15]),
    ("insert", (2, 3), "right", [10, 11, M, 12, M, 13, 14, 15]),
    ("delete", (2, 5), "right", [10, 11, 13, 14, 16, 17, M, M]),
    ("delete", (0, 7), "right", [11, 12, 13, 14, 15, 16, M, M]),
    ("displace", (2, 5), "right", [10, 11, M, 12, 14, M, 15, 17]),
    ("displace", (2, 3), "right", [10, 11, M, 12, 13, 15, 16, 17]),
    ("displace", (2, 5), "left", [10, 12, M, 13, 15, M, 16, 17]),
    ("displace", (2, 3), "left", [10, 12, 13, M, 14, 15, 16, 17]),
    ("swap", (2, 5), "right", [10, 11, 13, 12, 14, 16, 15, 17]),
    ("swap", (0, 6), "right", [11, 10, 12, 13, 14, 15, 17, 16]),
]


@pytest.mark.parametrize("mode,points,direction,expected", CASES)
def test_each_mode_gives_the_exact_canvas(mode, points, direction, expected):
    st = apply(mode, points, direction)
    assert st.x[0, P:].tolist() == expected
    assert st.x[0, :P].tolist() == [99] * P  # the prompt is never touched
    info = st.info["shift"]["s/0"]
    assert info["points"] == sorted(points) and info["canvas_before"] == TOKENS and info["canvas_after"] == expected


def test_trajectory_moves_with_the_tokens():
    st = apply("insert", (2, 5))
    # tokens now [10, 11, M, 12, 13, 14, M, 15]: sources [0, 1, -, 2, 3, 4, -, 5]
    assert st.commit_step[0].tolist() == [0, 1, -1, -1, -1, -1, -1, -1]  # moved tokens: not committed there
    assert st.confidence[0].tolist() == pytest.approx([0.05, 0.15, 0.0, 0.25, 0.35, 0.45, 0.0, 0.55])
    assert st.block_of[0].tolist() == [0, 0, -1, 0, 0, 1, -1, 1]

    st = apply("swap", (5,))
    assert st.commit_step[0].tolist() == [0, 1, 2, 3, 4, -1, -1, 7]
    assert st.confidence[0].tolist() == pytest.approx([0.05, 0.15, 0.25, 0.35, 0.45, 0.65, 0.55, 0.75])

    st = apply("delete", (0,))
    assert st.block_of[0].tolist() == [0, 0, 0, 1, 1, 1, 1, -1]
    assert st.confidence[0].tolist() == pytest.approx([0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.0])


def test_edit_map_matches_the_hook():
    assert edit_map("delete", [2, 5], G) == [0, 1, 3, 4, 6, 7, -1, -1]
    assert edit_map("displace", [6], G, "right") == [0, 1, 2, 3, 4, 5, -1, 6]


def test_fires_once_per_row_and_only_when_due():
    half = TOKENS[:4] + [M] * 4  # 50% committed
    st = make_state(rows=1, response=half)
    hook = Shift(mode="delete", positions=(0,), at=0.75)
    hook(st)
    assert st.x[0, P:].tolist() == half and "s/0" not in st.info.get("shift", {})  # 0.5 < 0.75: not yet
    hook = Shift(mode="delete", positions=(0,), at=0.5)
    hook(st)
    once = st.x[0, P:].tolist()
    assert once == TOKENS[1:4] + [M] * 5
    hook(st)  # already fired for this row: no second edit
    assert st.x[0, P:].tolist() == once
    # --at-step: fires after that many steps (step index is 0-based)
    st = make_state(step=2)
    Shift(mode="insert", positions=(0,), at=None, at_step=4)(st)
    assert st.x[0, P:].tolist() == TOKENS
    st = make_state(step=3)
    Shift(mode="insert", positions=(0,), at=None, at_step=4)(st)
    assert st.x[0, P:].tolist() == [M] + TOKENS[:-1]


def test_rows_get_their_own_seeded_points():
    st = make_state(rows=2, ids=["synthetic/1", "synthetic/2"])
    Shift(mode="swap", fraction=0.25, at=0.5)(st)
    for j, sid in enumerate(["synthetic/1", "synthetic/2"]):
        pts = seeded_points(sid, "swap", 0.25, G)
        assert st.info["shift"][sid]["points"] == pts and len(pts) == 2
        expected = list(TOKENS)
        for p in sorted(pts, reverse=True):
            expected[p], expected[p + 1] = expected[p + 1], expected[p]
        assert st.x[j, P:].tolist() == expected


def test_seeded_points_properties():
    assert num_points(0.0, 48) == 0 and num_points(0.01, 48) == 1 and num_points(0.05, 48) == 2
    assert num_points(0.5 / 16, 16) == 1 and num_points(1.5 / 16, 16) == 2  # halves round up
    a = seeded_points("gsm8k/17", "insert", 0.25, 48)
    assert a == seeded_points("gsm8k/17@clean", "insert", 0.25, 48)  # the id's setting suffix is ignored
    assert a == seeded_points("gsm8k/17", "delete", 0.25, 48)  # insert and delete share points
    assert len(a) == 12 and len(set(a)) == 12 and all(0 <= p < 48 for p in a)
    assert set(seeded_points("gsm8k/17", "insert", 0.05, 48)) <= set(a)  # smaller fractions: a subset
    assert any(seeded_points(f"gsm8k/{i}", "insert", 0.25, 48) != a for i in range(18, 22))
    right = seeded_points("x/1", "displace", 0.5, 16, "right")
    assert max(right) <= 14 and [p + 1 for p in right] == seeded_points("x/1", "displace", 0.5, 16, "left")
    assert seeded_points("x/1", "swap", 0.5, 16) == right


def test_bad_settings_are_bad_input():
    with pytest.raises(BadInput):
        Shift(mode="rotate").validate()
    with pytest.raises(BadInput):
        Shift(mode="insert", at=0.0).validate()
    with pytest.raises(BadInput):
        Shift(mode="insert", fraction=1.5).validate()
    with pytest.raises(BadInput):
        Shift(mode="swap", positions=(15,)).validate(16)  # no right neighbour
    with pytest.raises(BadInput):
        Shift(mode="displace", direction="left", positions=(0,)).validate(16)
    Shift(mode="insert", positions=(15,)).validate(16)


# ----------------------------------------------------------------------------------------- inside decoding
CFG = dict(gen_length=16, steps=8, block_length=8, batch_size=2)


@pytest.mark.parametrize("at_step", [6, 8])
@pytest.mark.parametrize("mode,point", [("insert", 1), ("delete", 3), ("displace", 2), ("swap", 9)])
def test_decoding_finishes_after_an_edit(tiny_random, mode, point, at_step):
    """An edit in the second block (after step 6) or after the last step (8) reopens positions, some in the
    finished first block; the recomputed schedule still fills them all."""
    cfg = SamplerConfig(**CFG)
    hook = Shift(mode=mode, positions=(point,), at=None, at_step=at_step)
    recs = generate(tiny_random, ["Ann has 10 pens.", "Bob has 3 cups and 4 more."], cfg, hooks=[hook],
                    sample_ids=["t/0", "t/1"])
    for r in recs:
        info = r["hook_info"]["shift"]
        assert info["fired_step"] == at_step - 1 and info["points"] == [point]
        assert tiny_random.mask_id not in r["output_ids"]  # decoding ended with no masks
        assert len(r["output_ids"]) == 16
        # every mask the edit left was committed later by the model, at a step after the edit
        created = [q for q, t in enumerate(info["canvas_after"]) if t == tiny_random.mask_id]
        assert all(r["trajectory"]["commit_step"][q] >= at_step for q in created)
        if at_step == 8:  # the canvas was full: the edit's masks are exactly the ones it made
            assert info["canvas_before"].count(tiny_random.mask_id) == 0
            assert len(created) == (0 if mode == "swap" else 1)
            assert r["nfe"] == (8 if mode == "swap" else 9)  # one extra step fills the reopened position


def test_at_fraction_fires_at_the_committed_share(tiny_random):
    cfg = SamplerConfig(gen_length=16, steps=16, block_length=16, batch_size=1)
    rec = generate(tiny_random, ["Sue has 20 eggs."], cfg, hooks=[Shift(mode="delete", positions=(4,), at=0.5)],
                   sample_ids=["t/9"])[0]
    info = rec["hook_info"]["shift"]
    assert info["committed"] == 0.5 and info["fired_step"] == 7  # one token per step: 8 of 16 after step 7
    assert sum(t != tiny_random.mask_id for t in info["canvas_before"]) == 8
    assert tiny_random.mask_id not in rec["output_ids"]


def test_the_at_trigger_reads_the_states_one_committed_fraction():
    """Committed = committed by the model (`StepState.committed_fraction`): a token an edit placed does not
    count, a [MASK] the model committed does."""
    st = make_state(response=TOKENS[:4] + [M] * 4)
    st.commit_step[0] = torch.tensor([0, 1, -1, 3, 4, -1, -1, -1])  # position 2 placed by an edit; 4: a [MASK]
    assert st.committed_fraction().tolist() == [0.5]
    hook = Shift(mode="delete", positions=(0,), at=0.5)
    assert hook.due(st).tolist() == [True]
    hook(st)
    assert st.info["shift"]["s/0"]["committed"] == 0.5
    st = make_state(response=TOKENS[:4] + [M] * 4)
    st.commit_step[0] = torch.tensor([0, 1, -1, 3, -1, -1, -1, -1])  # 4 tokens on the canvas, 3 committed
    assert hook.due(st).tolist() == [False]
