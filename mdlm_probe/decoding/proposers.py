"""Proposers: the token each scored position would take, drawn from the edited logits.

`proposer(logits (B, R, V), due (B, R) bool) -> x0 (B, R)` over the rows a step scores. At T = 0 every
proposer is the argmax. `SamplerConfig.proposer` names one; unset, the schedule's family default is used
(LLaDA's plan: `gumbel`, Dream's clock: `categorical`). Add one with `@PROPOSERS.register("name")`.
"""

from __future__ import annotations

import torch

from mdlm_probe.core.registry import Registry

from .processors import LogitsProcessor, Temperature

PROPOSERS = Registry("proposer")


def add_gumbel_noise(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gumbel-max in float64 as LLaDA does: exp(logits) / (-log U)^T."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


class Proposer:
    def __init__(self, temperature: float):
        self.temperature = temperature

    @classmethod
    def check(cls, cfg) -> None:
        """Refuse settings this proposer cannot honour (one line each)."""

    def processors(self) -> list[LogitsProcessor]:
        """Edits that must run before every other `propose` processor."""
        return []

    def __call__(self, logits: torch.Tensor, due: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@PROPOSERS.register("gumbel")
class GumbelMax(Proposer):
    """LLaDA: the argmax of Gumbel-noised logits at every scored position (noise drawn over all of them)."""

    def __call__(self, logits, due):
        return torch.argmax(add_gumbel_noise(logits, self.temperature), dim=-1)


@PROPOSERS.register("categorical")
class Categorical(Proposer):
    """Dream: logits divided by T (a processor, before the filters), then one categorical draw per `due`
    position in row-major order; other positions keep the argmax."""

    def processors(self):
        return [Temperature(self.temperature)] if self.temperature > 0 else []

    def __call__(self, logits, due):
        x0 = torch.argmax(logits, dim=-1)
        if self.temperature == 0 or not bool(due.any()):
            return x0
        probs = torch.softmax(logits[due], dim=-1)  # (N, V)
        try:
            x0[due] = torch.distributions.Categorical(probs=probs).sample()
        except (ValueError, RuntimeError):  # probabilities that are not finite: Dream keeps the argmax
            pass
        return x0

