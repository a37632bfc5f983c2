"""Step plans: how many masked positions commit at each step of a block.

A schedule turns the masks open at some step of a block into the commits of every step left:
`plan(masks (B,), steps, first) -> (B, steps - first)`, one column per step `first .. steps - 1` of a
block that runs `steps` steps. The sampler asks at each block start (`first = 0`, the block's own masks)
and again whenever a hook changes how many masks are open (`first` = the next step, or the block's last
step once its plan is used up, so a reopened mask always gets one more step). A schedule that keeps a
clock (Dream's times run from 1 down to eps over the steps) reads it from `first`.

`SamplerConfig.schedule` names one; add another with `@SCHEDULES.register("name")` on a `Schedule`.
"""

from __future__ import annotations

import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.registry import Registry

SCHEDULES = Registry("schedule")
register_schedule = SCHEDULES.register  # the name earlier releases documented


def get_schedule(name: str, cfg=None) -> "Schedule":
    """The schedule registered as `name`, set up from the sampler settings `cfg` where it has settings of its
    own (Dream's `eps`)."""
    return SCHEDULES.get(name).from_config(cfg)


class Schedule:
    """How many of the open masks each remaining step of a block commits."""

    name = "base"
    # The proposer (proposers.py) this schedule's family draws with when `SamplerConfig.proposer` is unset:
    # LLaDA's Gumbel-max, Dream's categorical draw.
    proposals = "gumbel"

    @classmethod
    def check(cls, cfg) -> None:
        """Refuse settings this schedule cannot honour (one line each)."""

    @classmethod
    def from_config(cls, cfg) -> "Schedule":
        return cls()

    def plan(self, masks: torch.Tensor, steps: int, first: int = 0) -> torch.Tensor:
        """masks (B,) long open at step `first` of a `steps`-step block -> (B, steps - first) long commits."""
        raise NotImplementedError


def num_transfer_tokens(masks: torch.Tensor, steps: int) -> torch.Tensor:
    """(B,) masks left, steps left -> (B, steps) tokens to commit per step: base, first (m % s) get one more."""
    base = masks // steps
    rem = masks % steps
    out = base[:, None].repeat(1, steps)
    idx = torch.arange(steps, device=masks.device)[None, :]
    return out + (idx < rem[:, None]).long()


@register_schedule("llada")
class LLaDASchedule(Schedule):
    """LLaDA's `get_num_transfer_tokens`: the open masks split evenly over the steps left (no clock)."""

    def plan(self, masks: torch.Tensor, steps: int, first: int = 0) -> torch.Tensor:
        return num_transfer_tokens(masks, steps - first)


@register_schedule("dream")
class DreamSchedule(Schedule):
    """Dream's `diffusion_generate` plan: time runs over linspace(1, eps, steps + 1); at step i, with t and s
    the current and next times, `int(n * (1 - s / t))` of the n masks open commit, and every mask left at the
    last step. Computed in float32 tensors as Dream does (the truncation depends on it). Counted per row:
    Dream's first release counts masks over the whole batch (docs/adapters.md says how that differs).
    Proposals are Dream's categorical draws; the `origin` selector commits each mask with probability 1 - s/t.
    """

    proposals = "categorical"

    def __init__(self, eps: float = 1e-3):
        self.eps = eps

    @classmethod
    def check(cls, cfg) -> None:
        if not 0.0 < cfg.eps < 1.0:
            raise BadInput(f"eps {cfg.eps} is not in (0, 1)")

    @classmethod
    def from_config(cls, cfg) -> "DreamSchedule":
        return cls(getattr(cfg, "eps", 1e-3))

    def times(self, steps: int, device=None) -> torch.Tensor:
        return torch.linspace(1, self.eps, steps + 1, device=device)  # (steps + 1,) float32

    def plan(self, masks: torch.Tensor, steps: int, first: int = 0) -> torch.Tensor:
        ts, n, cols = self.times(steps, masks.device), masks.clone(), []
        for i in range(first, steps):
            k = (n * (1 - ts[i + 1] / ts[i])).long() if i < steps - 1 else n.clone()  # long * float32 -> float32
            cols.append(k)
            n = n - k
        return torch.stack(cols, 1)  # (B, steps - first)

    def p_transfer(self, i: int, steps: int, device=None) -> torch.Tensor | float:
        """`origin`'s chance that a mask commits at step i: 1 - s/t, and 1 at the last step."""
        ts = self.times(steps, device)
        return 1 - ts[i + 1] / ts[i] if i < steps - 1 else 1
