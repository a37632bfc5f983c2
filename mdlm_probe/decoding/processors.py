"""Logit edits as small processors, applied in a list (the transformers `LogitsProcessor` pattern).

A processor is validated when built and then pure: `__call__(logits (B, L, V)) -> logits (B, L, V)`
returns edited logits and leaves its input as it was (the cached forward keeps the full forward's
logits for rows it did not run, so an edit must not leak into them). Each step applies two lists:

    propose     before the proposals are drawn (argmax; at T > 0 after Gumbel noise, or Dream's
                categorical draw); the confidence is computed from these too
    confidence  after the proposals are drawn, before the scorer (the remasking rule) scores them

`build_processors(cfg, model, first, extra)` makes both lists from the sampler settings; a setting that is
off adds nothing, so the default decode runs no processor at all. Other stages contribute their own edits
through it: the proposer's go first (Dream's temperature), the selector's after the filters (threshold
decoding never proposes [MASK]).
"""

from __future__ import annotations


from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from mdlm_probe.core.exceptions import BadInput

NEG_INF = float("-inf")
LogitsProcessor = Callable[[torch.Tensor], torch.Tensor]  # logits (B, L, V) -> edited copy (B, L, V)


@dataclass(frozen=True)
class BanTokens:
    """Set the logits of some vocabulary ids to -inf at every position."""

    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.ids or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in self.ids):
            raise ValueError(f"{type(self).__name__} needs one or more non-negative token ids, got {self.ids!r}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.index_fill(-1, torch.tensor(self.ids, device=logits.device), NEG_INF)


class NeverProposeMask(BanTokens):
    """[MASK] is never proposed (threshold decoding has no step plan to end a block on: blocks must finish)."""

    def __init__(self, mask_id: int):
        super().__init__((mask_id,))


class LogitsEosInf(BanTokens):
    """LLaDA's `logits_eos_inf`: EOS is never proposed."""

    def __init__(self, eos_id: int):
        super().__init__((eos_id,))


class ConfidenceEosEotInf(BanTokens):
    """LLaDA's `confidence_eos_eot_inf`, applied after the proposals are drawn.

    The reference writes `x0_p_logits[..., EOS] = logits[..., EoT] = -inf`, where the first name is the
    noisy logits: at T = 0 both names are one tensor, so both ids reach the confidence's softmax; at T > 0
    the noisy copy is discarded after the argmax and only EoT does. Kept exactly, hence the temperature."""

    def __init__(self, eos_id: int | None, eot_id: int | None, temperature: float):
        if temperature < 0:
            raise ValueError(f"temperature {temperature} is negative")
        ids = [eot_id] + ([eos_id] if temperature == 0 else [])
        super().__init__(tuple(i for i in ids if i is not None))


# ---- Dream's sampling filters (its generation_utils.py `sample_tokens`): they edit the logits the proposal
# and the confidence are both computed from, so they change which positions commit even at T = 0. Removed
# entries get the dtype's lowest value, as Dream fills them (not -inf).
@dataclass(frozen=True)
class Temperature:
    """Dream divides the logits by T before filtering and drawing (LLaDA instead puts T in the Gumbel noise)."""

    temperature: float

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"Temperature needs T > 0, got {self.temperature}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature


@dataclass(frozen=True)
class TopP:
    """Keep the smallest set of tokens whose probability reaches p (the first token always stays)."""

    p: float

    def __post_init__(self) -> None:
        if not 0.0 < self.p <= 1.0:
            raise ValueError(f"TopP needs 0 < p <= 1, got {self.p}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.p >= 1.0:  # Dream filters only below 1
            return logits
        sorted_logits, order = torch.sort(logits, descending=True)
        drop = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1) > self.p  # (..., V) in sorted order
        drop[..., 1:] = drop[..., :-1].clone()  # shift right: the token that crosses p stays
        drop[..., 0] = False
        remove = torch.zeros_like(drop).scatter_(-1, order, drop)
        return logits.masked_fill(remove, torch.finfo(logits.dtype).min)


@dataclass(frozen=True)
class TopK:
    """Keep the k largest logits at each position (ties with the k-th stay)."""

    k: int

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"TopK needs an integer k >= 1, got {self.k!r}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        kth = torch.topk(logits, min(self.k, logits.shape[-1]))[0][..., -1, None]
        return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


@dataclass(frozen=True)
class Upcast:
    """Fast-dLLM takes the confidence's softmax in float64 whatever the model's dtype; LLaDA's current
    `generate()` and Dream take it in the logits' own dtype. Last in the `confidence` list, so the rule
    (and the threshold comparison) runs in this dtype; the proposals are drawn before it."""

    dtype: torch.dtype = torch.float64

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.to(self.dtype)


# `SamplerConfig.confidence_dtype` -> the dtype the confidence is computed in (None: the logits' own)
CONFIDENCE_DTYPES: dict[str, torch.dtype | None] = {"logits": None, "float64": torch.float64}


class Processors(NamedTuple):
    propose: list[LogitsProcessor]
    confidence: list[LogitsProcessor]


def apply(processors: Sequence[LogitsProcessor], logits: torch.Tensor) -> torch.Tensor:
    """Run `logits` through each processor in order."""
    for p in processors:
        logits = p(logits)
    return logits


def check(cfg) -> None:
    """Refuse filter settings no processor can honour (one line each)."""
    if cfg.top_k is not None and (not isinstance(cfg.top_k, int) or isinstance(cfg.top_k, bool) or cfg.top_k < 0):
        raise BadInput(f"top-k {cfg.top_k} is not a whole number >= 0 (0 = no filter)")
    if cfg.top_p is not None and not 0.0 < cfg.top_p <= 1.0:
        raise BadInput(f"top-p {cfg.top_p} is not in (0, 1]")
    if cfg.confidence_dtype not in CONFIDENCE_DTYPES:
        raise BadInput(f"unknown confidence dtype {cfg.confidence_dtype!r}; expected one of "
                       f"{', '.join(CONFIDENCE_DTYPES)}")


def build_processors(cfg, model, first: Sequence[LogitsProcessor] = (),
                     extra: Sequence[LogitsProcessor] = ()) -> Processors:
    """The edits a `SamplerConfig` asks for, with the model's special ids (an id the model lacks: no edit).
    `first` (the proposer's) go before the filters, `extra` (the selector's) after them."""
    eos, eot = model.eos_id, getattr(model, "eot_id", None)
    propose: list[LogitsProcessor] = list(first)  # Dream's order: temperature, top-p, then top-k
    if cfg.top_p is not None:
        propose.append(TopP(cfg.top_p))
    if cfg.top_k:  # 0 or None: no filter
        propose.append(TopK(cfg.top_k))
    propose += extra
    if cfg.logits_eos_inf and eos is not None:
        propose.append(LogitsEosInf(eos))
    confidence: list[LogitsProcessor] = []
    if cfg.confidence_eos_eot_inf and (eot is not None or (eos is not None and cfg.temperature == 0)):
        confidence.append(ConfidenceEosEotInf(eos, eot, cfg.temperature))
    if CONFIDENCE_DTYPES[cfg.confidence_dtype] is not None:
        confidence.append(Upcast(CONFIDENCE_DTYPES[cfg.confidence_dtype]))
    return Processors(propose, confidence)
