"""Fast-dLLM's Dream decoders as stages: its threshold budget, its block decoder and its frozen cache.

Fast-dLLM (NVlabs/Fast-dLLM, folder dream/) decodes Dream with rules of its own, which differ from Dream's
`diffusion_generate` and from Fast-dLLM's LLaDA functions (docs/adapters.md has the measured consequences):

    threshold-budget                 no cache + threshold (dream/model/generation_utils.py): a step commits at
                                     most a budget, block length / steps plus what earlier steps of the block
                                     left unused; the best proposal always, the others only at or above the
                                     threshold. From the block's nominal last step on, the budget is every mask
                                     left, so a refused proposal adds a step until the block is full.
    fastdllm-dream-block             the block decoder (dream/model/generation_utils_block.py), entropy path:
                                     a block's first step commits the block's first position (its argmax)
                                     whatever its confidence; the other steps follow Dream's clock from its
                                     second time on, over the block's remaining masks. With one step per block
                                     that first step is all: one more forward commits nothing and the block
                                     keeps its masks, as the reference does.
    fastdllm-dream-block-threshold   the block decoder's threshold path: the same first commit, then every
                                     step the best proposal and every other at or above the threshold (no
                                     budget, `steps` unused); the block ends when its masks are gone.
    cache prefix-frozen/dual-frozen  the block decoder's caches: the row before the block keeps the keys and
                                     values of the block's first (full) forward, like the rest of the prefix
                                     (dual: and the positions after the block), and is never forwarded again;
                                     a cached step forwards the block's rows (and, prefix, all after it) only.

Thresholds are compared in the confidence's dtype as Fast-dLLM compares them (in bfloat16 0.9 reads 0.8984375),
and <|mask|> is not banned from the proposals (Fast-dLLM's softmax covers the whole vocabulary).
"""

from __future__ import annotations

import torch

from mdlm_probe.core.exceptions import BadInput

from .forward import FORWARDS, BlockCached
from .processors import NEG_INF
from .selectors import SELECTORS, Selector, check_threshold, top_k


def block_conf(conf: torch.Tensor, st) -> torch.Tensor:
    """conf (B, L) with everything before the current block at -inf: Fast-dLLM ranks the block's masks only."""
    conf = conf.clone()
    conf[:, :st.block_end - st.block_length] = NEG_INF
    return conf


def first_position(conf: torch.Tensor, st) -> torch.Tensor:
    """(B, L) bool: the block's first position, where it is still a mask (Fast-dLLM's forced commit)."""
    transfer = torch.zeros_like(conf, dtype=torch.bool)
    start = st.block_end - st.block_length
    transfer[:, start] = st.x[:, start] == st.mask_id
    return transfer


@SELECTORS.register("threshold-budget")
class ThresholdBudget(Selector):
    """Fast-dLLM's Dream threshold rule without cache (rule C in docs/adapters.md). Stateless: the budget is
    read off the block's commits so far (block length / steps x (i + 1) minus them), so a fork resumes it."""

    def __init__(self, cfg, schedule):
        super().__init__(cfg, schedule)
        self.threshold = cfg.threshold
        self.per_step = cfg.block_length // cfg.steps_per_block

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        check_threshold(cfg, f"selector {cfg.selector}: ")
        if cfg.block_length % cfg.steps_per_block:
            raise BadInput(f"selector threshold-budget: block length {cfg.block_length} is not a multiple of its "
                           f"{cfg.steps_per_block} steps (Fast-dLLM asserts the masks divide by the steps)")

    def block_over(self, st) -> bool:
        return False  # the block runs until its masks are gone (the reference adds steps one at a time)

    def budget(self, st) -> torch.Tensor:
        """(B,) at most this many commits now: the per-step share plus what earlier steps left; all at the end."""
        open_ = st.masks_open()
        if st.i >= self.steps - 1:
            return open_
        done = ((st.block_of == st.block) & (st.commit_step >= 0)).sum(1)
        return (self.per_step * (st.i + 1) - done).clamp(min=0).minimum(open_)

    def count(self, conf, st):
        above = (conf >= self.threshold).sum(1).clamp(min=1)  # compared in conf's dtype, as the reference does
        return above.minimum(self.budget(st))

    def select(self, conf, st, due):
        conf = block_conf(conf, st)
        return top_k(conf, self.count(conf, st))


@SELECTORS.register("fastdllm-dream-block")
class FastDllmDreamBlock(Selector):
    """Fast-dLLM's Dream block decoder, entropy path (rule A in docs/adapters.md): step 0 commits the block's
    first position; steps 1 .. spb-1 commit Dream's `int(n (1 - s/t))` of the block's masks by the clock
    linspace(1, eps, spb + 1) from its second time, every mask left at the last step."""

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cfg.schedule != "dream":
            raise BadInput(f"selector {cfg.selector} needs --schedule dream (Fast-dLLM's Dream plan is Dream's clock)")

    def start_block(self, st) -> None:
        n = st.masks_in_block()
        first = (n > 0).long()[:, None]  # (B, 1)
        if self.steps == 1:  # the reference forwards once more and stops before committing
            rest = torch.zeros_like(first)
        else:
            rest = self.schedule.plan(n - first[:, 0], self.steps, 1)  # (B, spb - 1)
        st.plan = torch.cat([first, rest], 1)

    def select(self, conf, st, due):
        if st.i == 0:
            return first_position(conf, st)
        conf = block_conf(conf, st)
        open_ = (conf > NEG_INF).sum(1)
        return self.pick(conf, self.count(conf, st).minimum(open_))


@SELECTORS.register("fastdllm-dream-block-threshold")
class FastDllmDreamBlockThreshold(FastDllmDreamBlock):
    """The block decoder's threshold path: the forced first commit, then the best proposal and every other at or
    above the threshold, among the block's masks, until the block is full (`steps` is not used)."""

    def __init__(self, cfg, schedule):
        super().__init__(cfg, schedule)
        self.threshold = cfg.threshold

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        check_threshold(cfg, f"selector {cfg.selector}: ")

    def block_over(self, st) -> bool:
        return False

    def count(self, conf, st):
        return (conf >= self.threshold).sum(1).clamp(min=1)  # in conf's dtype, as the reference compares


class FrozenBlockCached(BlockCached):
    """A block cache whose cached steps forward the block's own rows (and, prefix, all after them) only: the row
    before the block keeps the block-start keys/values. For an adapter whose logits come from the row before
    (Dream, `cached_lookback` 1) the block's first position then gets no fresh logits: it keeps the full
    forward's, which Fast-dLLM's block decoder has committed at that step anyway."""

    def cut(self, start: int) -> int:
        return start + min(getattr(self.model, "cached_lookback", 0), 1)


@FORWARDS.register("prefix-frozen")
class PrefixFrozen(FrozenBlockCached):
    keeps_suffix = False


@FORWARDS.register("dual-frozen")
class DualFrozen(FrozenBlockCached):
    keeps_suffix = True
