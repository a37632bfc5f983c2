"""The diffusion sampler: LLaDA's `generate()` reproduced token for token, as a pipeline of stages.

Decoding fills a canvas of `gen_length` masks after the prompt, block by block, left to right. Each step is

    forward -> [repair] -> edit logits -> propose -> score -> select -> commit -> hooks

one forward pass (`forward.py`: exact or a block KV cache), logit edits (`processors.py`), a proposal for
every scored position (`proposers.py`), a confidence for each (`scorers.py`, the remasking rule), the
positions that commit (`selectors.py`, which also owns the block's plan from `schedules.py`), and the step
hooks, which may edit the canvas (the shift interventions); committed tokens never change otherwise, unless a
repair is on (`repair.py`: it may return committed tokens to [MASK] or move them, right after the forward).
`diffuse` is the loop and reads beside LLaDA's; `stages.build_pipeline` picks the stages from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .config import SamplerConfig
from .processors import NEG_INF, apply
from .stages import Pipeline, build_pipeline
from .state import StepHook, StepState


@dataclass
class Decoded:
    x: torch.Tensor  # (B, P + G) final canvas
    commit_step: torch.Tensor  # (B, G)
    confidence: torch.Tensor  # (B, G)
    block_of: torch.Tensor  # (B, G)
    nfe: int
    tokens_forwarded: int
    info: dict[str, Any]
    halted: bool = False  # a hook stopped the decode early: the canvas is not finished

    @classmethod
    def of(cls, st: StepState) -> "Decoded":
        return cls(x=st.x, commit_step=st.commit_step, confidence=st.confidence, block_of=st.block_of, nfe=st.nfe,
                   tokens_forwarded=st.tokens_forwarded, info=st.info, halted=st.halted)


@torch.no_grad()
def diffuse(model, prompt: torch.Tensor, attention_mask: torch.Tensor | None, cfg: SamplerConfig,
            hooks: Sequence[StepHook] = (), sample_ids: Sequence[str] = (),
            state: StepState | None = None) -> Decoded:
    """Decode one left-padded batch. prompt (B, P) long; attention_mask (B, P) or None.

    `hooks` run after every step (the contract is `StepState`'s). `state`: continue a decode from a fork of
    it (`StepState.resumed`, same prompts and settings, exact forward only): the fork step's hooks run first.
    """
    cfg.validate()
    mask_id, dev, B, G = model.mask_id, model.device, prompt.shape[0], cfg.gen_length
    if attention_mask is not None:
        attention_mask = torch.cat([attention_mask.to(dev), attention_mask.new_ones((B, G)).to(dev)], dim=-1)
    prompt_index = torch.cat([prompt.to(dev) != mask_id, torch.zeros((B, G), dtype=torch.bool, device=dev)], 1)
    pipe = build_pipeline(model, cfg, attention_mask, prompt_index)  # padding counts as prompt, as in LLaDA
    hooks = (*hooks, *getattr(pipe.forward, "hooks", ()))  # a drift meter's own (read-only) hook runs last
    if state is not None and not getattr(pipe.forward, "resumable", False):
        raise ValueError(f"resuming a fork needs the exact forward (cache {cfg.cache!r} keeps state a fork lacks)")
    st = state
    if st is None:
        st = StepState.start(prompt, G, cfg.block_length, mask_id, sample_ids, dev)
        pipe.selector.start_block(st)
    num_blocks = G // cfg.block_length
    while True:
        if st.stepped:  # the step just taken: its hooks, then the next step
            run_hooks(st, hooks, pipe)
            if st.halted:
                break
            st.i, st.step, st.stepped = st.i + 1, st.step + 1, False
        # A block ends with no masks open or when its selector says so (a plan used up). As in the reference, a
        # [MASK] the model itself proposed then stays (a trained model never proposes it).
        if int(st.masks_open().max()) == 0 or pipe.selector.block_over(st):
            if st.block + 1 == num_blocks:
                break
            st.block, st.i = st.block + 1, 0
            pipe.selector.start_block(st)
            continue
        step(st, pipe, cfg.block_length)
    return Decoded.of(st)


def step(st: StepState, pipe: Pipeline, block_length: int) -> None:
    """One step on the current block: forward, edit, propose, score, select, commit."""
    end = st.block_end
    masks = st.x == st.mask_id  # (B, L)
    logits, n = pipe.forward(st.x, end - block_length, end)  # (B, L, V)
    st.nfe, st.tokens_forwarded = st.nfe + 1, st.tokens_forwarded + n
    logits, masks = pipe.repair(st, logits, masks)  # off: unchanged; else committed tokens reopened or moved
    rows = slice(0, st.x.shape[1]) if pipe.every_row else scored_rows(masks, end)  # rows that can commit
    logits = apply(pipe.edits.propose, logits[:, rows])  # (B, R, V)
    due = pipe.selector.draw(st, masks, end)  # (B, L) masks a proposal is drawn for
    x0 = st.x.clone()
    x0[:, rows] = pipe.propose(logits, due[:, rows])  # (B, L)
    logits = apply(pipe.edits.confidence, logits)
    st.logits, st.rows = logits, rows
    conf = logits.new_full(x0.shape, NEG_INF)
    conf[:, rows] = pipe.score(logits, x0[:, rows])
    conf[:, end:] = NEG_INF  # later blocks wait
    conf = conf.masked_fill(~masks, NEG_INF)  # only masks compete
    x0 = torch.where(masks, x0, st.x)
    st.commit(pipe.selector.select(conf, st, due), x0, conf)
    st.stepped = True


def scored_rows(masks: torch.Tensor, end: int) -> slice:
    """The canvas rows a step scores: from the first row that holds a mask to the block's end.

    No proposal or confidence outside them is ever used (rows before hold no mask, rows after wait for later
    blocks), so the processors and the softmax skip them: with a long prompt and a KV cache those passes over
    (B, L, V) were most of the time outside the forward. Where noise is drawn (T > 0, random remasking) every
    row is scored instead (`Pipeline.every_row`), because the reference draws it over the whole canvas."""
    first = masks[:, :end].any(0).nonzero()
    return slice(int(first[0]) if len(first) else end - 1, end)


def run_hooks(st: StepState, hooks: Sequence[StepHook], pipe: Pipeline) -> None:
    """Call each hook (the contract is `StepState`'s); if the masks open changed, the selector re-plans."""
    if not hooks:
        return
    before = st.masks_open()
    for hook in hooks:
        hook(st)
    after = st.masks_open()
    if not torch.equal(before, after):
        pipe.selector.replan(st, after)
