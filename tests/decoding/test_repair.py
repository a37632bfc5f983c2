"""Repair stages (decoding/repair.py): off is byte-identical, each strategy repairs a hand-built shift on a stand-in
model whose scores favour the repair, the trajectory and NFE record it, a budget of 0 changes nothing."""

from __future__ import annotations

import pytest
import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import REPAIRS, SamplerConfig, diffuse, generate

G, V, MASK = 8, 16, 1
DIGITS = {str(d): 4 + d for d in range(10)}  # token ids 4..13 are the digits 0..9
TARGET = [DIGITS[c] for c in "12345678"]  # what the stand-in wants at each response position


class _Vocab:
    def get_vocab(self) -> dict[str, int]:
        return dict(DIGITS)


class PositionModel:
    """A deterministic stand-in: at response position j it wants TARGET[j] (logit 10, a little more to the left,
    so positions commit left to right), whatever the canvas holds. A token moved off its place scores low there,
    and a canvas put back scores high: the scores favour the repair."""

    mask_id, eos_id, device, tokenizer = MASK, None, torch.device("cpu"), _Vocab()

    def __init__(self, prompt_len: int):
        self.P = prompt_len

    def __call__(self, x, attention_mask=None):
        B, L = x.shape
        logits = torch.zeros((B, L, V))
        logits[:, : self.P] = 10 * torch.nn.functional.one_hot(x[:, : self.P], V).float()
        for j in range(L - self.P):
            logits[:, self.P + j, TARGET[j]] = 10 + 0.1 * (G - j)
        return logits


def shift_hook(kind: str, at_step: int, q: int):
    """A hand-built shift at step `at_step`: "delete" pulls the tail left from q (a mask at the end), "dup" copies
    position q-1 into q and pushes the tail right; the trajectory entries move with their tokens."""
    def hook(st):
        if st.step != at_step:
            return
        P = st.prompt_len
        for t, empty in ((st.x[:, P:], MASK), (st.commit_step, -1), (st.confidence, 0.0), (st.block_of, -1)):
            row = t.clone()
            if kind == "delete":
                t[:, q:-1], t[:, -1] = row[:, q + 1:], empty
            else:
                t[:, q + 1:] = row[:, q:-1]
    return hook


PROMPT = torch.tensor([[DIGITS["9"], DIGITS["9"]]])


def decode(cfg: SamplerConfig, hooks=()):
    return diffuse(PositionModel(PROMPT.shape[1]), PROMPT, None, cfg, hooks=hooks, sample_ids=["s0"])


def cfg_for(repair=None, **kw) -> SamplerConfig:
    return SamplerConfig(gen_length=G, steps=G, block_length=G, repair=repair, **kw)


def response(out) -> list[int]:
    return out.x[0, PROMPT.shape[1]:].tolist()


# ----------------------------------------------------------------------------------------- off
def test_repair_off_is_byte_identical(tiny_random):
    base = SamplerConfig(gen_length=16, steps=16, block_length=8)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    ref = strip(generate(tiny_random, ["12+30=", "7+8="], base))
    assert "repair" not in base.to_dict() and "repair_budget" not in base.to_dict()  # records as before
    for off in (SamplerConfig(gen_length=16, steps=16, block_length=8, repair=None),
                SamplerConfig(gen_length=16, steps=16, block_length=8, repair="none")):
        assert strip(generate(tiny_random, ["12+30=", "7+8="], off)) == ref


def test_the_stand_in_decodes_its_target_and_a_shift_breaks_it():
    assert response(decode(cfg_for())) == TARGET
    assert response(decode(cfg_for(), [shift_hook("delete", 3, 1)])) != TARGET


# ----------------------------------------------------------------------------------------- each strategy
@pytest.mark.parametrize("repair, hook, kinds", [
    ("remask-low", shift_hook("delete", 3, 1), {"remask"}),  # tokens pulled off their places reopen
    ("seam", shift_hook("dup", 3, 2), {"remask"}),  # a repeated token: a window around it reopens
    ("edit", shift_hook("dup", 3, 2), {"delete"}),  # the duplicate deleted, the tail pulled left
    ("edit", shift_hook("delete", 3, 1), {"insert"}),  # a gap opened where a token went missing
    ("probe", shift_hook("delete", 3, 1), {"insert"}),  # hidden, the moved token misfits: a gap before it
    ("probe", shift_hook("dup", 3, 2), {"delete"}),  # hidden, the duplicate misfits and equals its neighbour
])
def test_each_strategy_repairs_a_hand_built_shift(repair, hook, kinds):
    broken = decode(cfg_for(), [hook])
    out = decode(cfg_for(repair, **({"repair_every": 4} if repair == "probe" else {})), [hook])
    assert response(broken) != TARGET and response(out) == TARGET
    events = out.info["repair"]["s0"]
    assert kinds <= {e["kind"] for e in events} and all(e["step"] >= 4 and e["block"] == 0 for e in events)
    first = min(e["step"] for e in events)
    moved = [q for e in events for q in e["positions"]]
    # the trajectory: the repaired positions were committed again after the repair
    assert all(int(out.commit_step[0, q]) >= first for q in moved if kinds == {"remask"})
    assert out.nfe >= broken.nfe and int((out.x == MASK).sum()) == 0
    if repair in ("edit", "probe"):  # scoring the edited canvas is one more forward, counted
        assert out.nfe > broken.nfe and out.tokens_forwarded > broken.tokens_forwarded


class CopyModel(PositionModel):
    """Like PositionModel, but a committed token is copied where it stands (logit 20): only a token hidden behind
    [MASK] is scored against what its position wants. The visible scores never doubt a moved token."""

    def __call__(self, x, attention_mask=None):
        logits = super().__call__(x, attention_mask)
        seen = x[:, self.P:] != MASK
        copy = 20 * torch.nn.functional.one_hot(x[:, self.P:], V).float()
        logits[:, self.P:] = torch.where(seen[..., None], copy, logits[:, self.P:])
        return logits


def test_only_the_probe_sees_a_shift_a_copying_model_hides():
    def run(repair, **kw):
        return diffuse(CopyModel(PROMPT.shape[1]), PROMPT, None, cfg_for(repair, **kw),
                       hooks=[shift_hook("delete", 3, 1)], sample_ids=["s0"])
    broken = run(None)
    assert response(broken) != TARGET
    for visible in ("remask-low", "seam", "edit"):  # the copied tokens score ~1: nothing is doubted
        assert response(run(visible, repair_threshold=0.9)) == response(broken)
    probed = run("probe", repair_every=4, repair_stride=2)
    assert response(probed) == TARGET
    # 8 steps, probes at steps 4 (2 hidden forwards + 1 for the edited canvas), none later with nothing doubted
    # (one more step for the gap: the plan is re-made)
    assert probed.nfe > broken.nfe + 2 and probed.info["repair"]["s0"][0]["kind"] == "insert"


def test_probe_timing_and_settings():
    # never before its first period: a shift after the last probe is not seen
    late = decode(cfg_for("probe", repair_every=4), [shift_hook("delete", 5, 1)])
    assert response(late) != TARGET and "repair" not in late.info
    with pytest.raises(BadInput, match="repair-every 0"):
        SamplerConfig(repair="probe", repair_every=0).validate()
    with pytest.raises(BadInput, match="cache"):
        SamplerConfig(gen_length=16, steps=16, block_length=8, repair="probe", cache="prefix").validate()


def test_a_reopening_near_the_block_end_adds_steps_and_they_are_counted():
    out = decode(cfg_for("remask-low", repair_budget=8), [shift_hook("delete", 6, 1)])  # 7 of 8 committed
    assert response(out) == TARGET
    assert out.nfe > G  # the plan gained steps for the reopened positions


@pytest.mark.parametrize("repair", ["remask-low", "seam", "edit", "probe"])
def test_a_budget_of_zero_changes_nothing(repair):
    hook = shift_hook("dup", 3, 2) if repair != "remask-low" else shift_hook("delete", 3, 1)
    off, zero = decode(cfg_for(), [hook]), decode(cfg_for(repair, repair_budget=0), [hook])
    assert response(zero) == response(off) and zero.nfe == off.nfe
    assert torch.equal(zero.commit_step, off.commit_step) and "repair" not in zero.info


def test_the_budget_caps_the_positions_reopened():
    out = decode(cfg_for("remask-low", repair_budget=2), [shift_hook("delete", 5, 0)])
    assert sum(len(e["positions"]) for e in out.info["repair"]["s0"]) == 2


def test_the_repair_log_reaches_the_record(tiny_random):
    def sure(st):  # a hand-built trajectory: the tokens so far were committed with certainty
        if st.step == 2:
            st.confidence[st.commit_step >= 0] = 1.0

    cfg = SamplerConfig(gen_length=8, steps=8, block_length=8, repair="remask-low")
    rec = generate(tiny_random, ["12+30="], cfg, hooks=[sure], sample_ids=["a"])[0]
    assert rec["sampler"]["repair"] == "remask-low"
    events = rec["hook_info"]["repair"]  # the random model doubts them at once: they reopen at step 3
    assert events and events[0]["step"] == 3 and events[0]["kind"] == "remask"
    assert all(set(e) == {"step", "block", "kind", "positions"} for e in events)


# ----------------------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("kw, msg", [({"repair": "bogus"}, "unknown repair 'bogus'"),
                                     ({"repair_threshold": 1.5}, "repair-threshold 1.5"),
                                     ({"repair_budget": -1}, "repair-budget -1"),
                                     ({"repair_window": -2}, "repair-window -2"),
                                     ({"repair_scope": "doc"}, "unknown repair-scope"),
                                     ({"repair": "seam", "remasking": "origin", "schedule": "dream"}, "origin")])
def test_bad_repair_settings_are_one_line(kw, msg):
    with pytest.raises(BadInput, match=msg):
        SamplerConfig(**kw).validate()


def test_bad_repair_options_exit_2_with_one_line(cli, capsys):
    assert cli("generate", "--ckpt", "tiny-random", "--gen-length", "8", "--steps", "8", "--block-length", "8",
               "--repair", "bogus", "--prompt", "1+1=") == 2
    err = capsys.readouterr().err.strip()
    assert "unknown repair 'bogus'" in err and len(err.splitlines()) == 1
    assert set(REPAIRS.names()) >= {"none", "remask-low", "seam", "edit", "probe"}
