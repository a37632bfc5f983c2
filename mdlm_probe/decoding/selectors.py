"""Selectors: which masked positions commit at a step, and when a block is over.

A selector owns the block's plan (the schedule's commit counts, `StepState.plan`) and answers, per step:

    draw(st, masks, end)        positions due before any proposal is drawn (Dream's `origin` draws here,
                                so its random numbers come before the proposals' as in Dream)
    select(conf, st, due)       (B, L) bool: the positions that commit, from the confidence (B, L) that is
                                -inf everywhere but the masks of blocks up to the current one
    block_over(st)              the block ends before its masks are all gone (a plan used up)
    replan(st, masks)           a hook changed how many masks are open: plan the block's rest again

`selector_name(cfg)` says which one a config asks for: `SamplerConfig.selector` when set, else `origin` for
Dream's origin remasking, `threshold` when a threshold is set, `plan` otherwise. Within the plan and
threshold selectors, `pick` takes the k positions: the k most confident (`torch.topk`, as LLaDA), or with
Dream's `alg_temp` > 0 k drawn from softmax(confidence / alg_temp). Add one with `@SELECTORS.register`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.registry import Registry

from .processors import NEG_INF, LogitsProcessor, NeverProposeMask

SELECTORS = Registry("selector")


def top_k(conf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """conf (B, L), k (B,) -> (B, L) bool: each row's k most confident positions (`torch.topk`, as LLaDA)."""
    transfer = torch.zeros_like(conf, dtype=torch.bool)
    for j in range(conf.shape[0]):
        if int(k[j]) > 0:
            transfer[j, torch.topk(conf[j], k=int(k[j])).indices] = True
    return transfer


def sample_positions(conf: torch.Tensor, k: torch.Tensor, alg_temp: float) -> torch.Tensor:
    """Dream's `alg_temp` > 0: each row's k positions drawn without replacement from softmax(conf / alg_temp)
    over the positions that compete (conf > -inf), in position order. conf (B, L), k (B,) -> (B, L) bool."""
    transfer = torch.zeros_like(conf, dtype=torch.bool)
    for j in range(conf.shape[0]):
        if int(k[j]) > 0:
            cand = torch.nonzero(conf[j] > NEG_INF).squeeze(1)
            w = F.softmax(conf[j, cand] / alg_temp, dim=-1)
            transfer[j, cand[torch.multinomial(w, num_samples=int(k[j]))]] = True
    return transfer


class Selector:
    """The plan-following base: `steps` steps per block, the schedule's counts."""

    def __init__(self, cfg, schedule):
        self.schedule, self.steps, self.alg_temp = schedule, cfg.steps_per_block, cfg.alg_temp

    @classmethod
    def check(cls, cfg) -> None:
        if cfg.alg_temp is not None and cfg.alg_temp < 0:
            raise BadInput(f"alg-temp {cfg.alg_temp} is negative")

    def processors(self, model) -> list[LogitsProcessor]:
        """Edits this selector needs before proposals are drawn."""
        return []

    def start_block(self, st) -> None:
        # The plan counts the block's own masks (as the reference does); masks left earlier still compete.
        st.plan = self.schedule.plan(st.masks_in_block(), self.steps)

    def replan(self, st, masks: torch.Tensor) -> None:
        first = min(st.i + 1, self.steps - 1)  # at least one step more, also after the block's last
        st.plan = torch.cat([st.plan[:, :st.i + 1], self.schedule.plan(masks, self.steps, first)], 1)

    def block_over(self, st) -> bool:
        return st.i >= st.plan.shape[1]

    def draw(self, st, masks: torch.Tensor, end: int) -> torch.Tensor:
        return masks

    def count(self, conf: torch.Tensor, st) -> torch.Tensor:
        """(B,) how many positions each row commits now (before the cap at the masks open)."""
        return st.plan[:, st.i]

    def pick(self, conf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return sample_positions(conf, k, self.alg_temp) if self.alg_temp else top_k(conf, k)

    def select(self, conf: torch.Tensor, st, due: torch.Tensor) -> torch.Tensor:
        return self.pick(conf, self.count(conf, st).minimum(st.masks_open()))


@SELECTORS.register("plan")
class Plan(Selector):
    """LLaDA's `generate()` (and Dream's maskgit-style rules): the plan's count, most confident first."""


def check_threshold(cfg, who: str = "") -> None:
    """A threshold selector needs a threshold in (0, 1]; `who` opens the message (the selector named)."""
    if cfg.threshold is None or not 0.0 < cfg.threshold <= 1.0:
        raise BadInput(f"{who}threshold {cfg.threshold} is not in (0, 1]")


@SELECTORS.register("threshold")
class Threshold(Selector):
    """Fast-dLLM parallel decoding: every proposal at or above the threshold, and at least the best one; a block
    ends when its masks are gone, so [MASK] is never proposed."""

    def __init__(self, cfg, schedule):
        super().__init__(cfg, schedule)
        self.threshold = cfg.threshold

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        check_threshold(cfg)

    def processors(self, model):
        return [NeverProposeMask(model.mask_id)]

    def block_over(self, st) -> bool:
        return False

    def count(self, conf, st):
        return (conf.double() >= self.threshold).sum(1).clamp(min=1)  # in float64: bf16 would read 0.9 as 0.898


@SELECTORS.register("origin")
class Origin(Selector):
    """Dream's `origin`: before proposing, each mask of the blocks so far commits with probability 1 - s/t
    (the dream schedule's clock), every one at the block's last step; proposals are drawn for those only."""

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cfg.schedule != "dream":
            raise BadInput("remasking origin needs --schedule dream (it commits with Dream's probability 1 - s/t)")

    def draw(self, st, masks, end):
        due = masks.clone()
        due[:, end:] = False
        due[due.clone()] = torch.rand(int(due.sum()), device=masks.device) < self.schedule.p_transfer(
            st.i, self.steps, masks.device)
        return due

    def select(self, conf, st, due):
        return due


def selector_name(cfg) -> str:
    """The selector a config asks for (see the module's docstring)."""
    if cfg.selector:
        return cfg.selector
    if cfg.remasking == "origin":
        return "origin"
    return "threshold" if cfg.threshold is not None else "plan"
