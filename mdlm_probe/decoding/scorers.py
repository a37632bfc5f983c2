"""Scorers (remasking rules): how confident a step is in each proposal; the selector commits the most confident.

`scorer(logits (B, R, V), x0 (B, R)) -> confidence (B, R)`, higher commits first. `SamplerConfig.remasking`
names one; add one with `@SCORERS.register("name")` on a `Scorer`. A scorer that draws noise sets
`every_row`: the reference draws it over the whole canvas, so every row must be scored for the draws to match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdlm_probe.core.registry import Registry

SCORERS = Registry("remasking rule")


class Scorer:
    every_row = False  # True: scored over the whole canvas, whatever the rows that can commit

    @classmethod
    def check(cls, cfg) -> None:
        """Refuse settings this scorer cannot honour (one line each)."""

    def __call__(self, logits: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@SCORERS.register("low_confidence")
class LowConfidence(Scorer):
    """The proposal's probability (LLaDA), softmax in the logits' dtype."""

    def __call__(self, logits, x0):
        p = F.softmax(logits, dim=-1)
        return torch.gather(p, -1, x0[..., None]).squeeze(-1)


@SCORERS.register("random")
class Random(Scorer):
    """Uniform noise: positions commit in random order (LLaDA's `random` remasking)."""

    every_row = True

    def __call__(self, logits, x0):
        return torch.rand((x0.shape[0], x0.shape[1]), device=x0.device)


# Dream's rules, as its `sample_tokens` computes them (softmax in the logits' dtype; at T > 0 from the logits
# Dream has divided by T, see processors.Temperature).
@SCORERS.register("maskgit_plus")
class MaskGitPlus(LowConfidence):
    """Dream's name for the proposal's probability (the top one at T = 0)."""


@SCORERS.register("topk_margin")
class TopKMargin(Scorer):
    """Probability of the best token minus the second best."""

    def __call__(self, logits, x0):
        top2 = F.softmax(logits, dim=-1).topk(2, dim=-1).values
        return top2[..., 0] - top2[..., 1]


@SCORERS.register("entropy")
class NegEntropy(Scorer):
    """Negative entropy: confident = high; Dream's 1e-10 inside the log."""

    def __call__(self, logits, x0):
        p = F.softmax(logits, dim=-1)
        return (p * torch.log(p + 1e-10)).sum(-1)


@SCORERS.register("origin")
class Origin(LowConfidence):
    """Dream's `origin`: the `origin` selector draws which masks commit (probability 1 - s/t); the score kept
    in the trajectory is the proposal's probability."""
