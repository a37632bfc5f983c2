"""The sampler's settings: one dataclass, checked once, saved in every record and run config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from mdlm_probe.core.exceptions import BadInput

from .stages import stage_classes


@dataclass
class SamplerConfig:
    gen_length: int = 48
    steps: int = 48
    block_length: int = 48
    temperature: float = 0.0
    cfg_scale: float = 0.0
    remasking: str = "low_confidence"  # the scorer (scorers.py): what a proposal's confidence is
    schedule: str = "llada"  # the per-step commit counts (schedules.py)
    threshold: float | None = None  # Fast-dLLM parallel decoding: commit every proposal at or above this
    confidence_dtype: str = "logits"  # the confidence's softmax: in the logits' dtype (LLaDA) or float64 (Fast-dLLM)
    cache: str = "none"  # the forward policy (forward.py): none | prefix | dual
    cache_refresh: int = 0  # with a cache: full forward every N steps within a block (0 = at block starts only)
    seed: int = 0
    batch_size: int = 16
    collapse: str | None = None  # which collapse map is scored; None = the checkpoint's
    logits_eos_inf: bool = False
    confidence_eos_eot_inf: bool = False
    top_k: int | None = None  # Dream's filters (processors.py): keep the k most likely tokens (0/None: off) ...
    top_p: float | None = None  # ... and the smallest set reaching probability p, before proposing
    alg_temp: float | None = None  # Dream: > 0 draws which positions commit, softmax(confidence / alg_temp)
    eps: float = 1e-3  # the dream schedule's last time (its clock runs from 1 down to eps)
    proposer: str | None = None  # proposers.py: gumbel | categorical; None = the schedule's family default
    selector: str | None = None  # selectors.py: plan | threshold | origin ...; None = from remasking and threshold
    repair: str | None = None  # repair.py: remask-low | seam | edit; None = off (committed tokens never change)
    repair_threshold: float = 0.5  # a committed token the model now scores below this is doubted
    repair_budget: int = 4  # positions reopened or moved (edits tried) per sample and block
    repair_window: int = 1  # seam: positions reopened either side of a seam
    repair_scope: str = "block"  # block: the current block's committed tokens; all: earlier blocks' too
    repair_every: int = 16  # probe: steps of a block between two probes
    repair_stride: int = 3  # probe: forwards per probe (each hides every stride-th committed token)
    measure_cache_drift: bool = False  # drift.py: also run the exact forward and compare (costs a forward per step)
    drift_every: int = 1  # ... at every k-th step
    compact: bool = False  # compaction.py: rows with no mask up to the block's end leave the forward batch
    cache_drift_threshold: float = 0.2  # adaptive_cache.py: full forward once the probe's keys drifted this far

    # Settings added after runs were first recorded, at the value every earlier run used: `to_dict` leaves
    # them out at that value, so earlier run directories stay resumable and comparable (absent = this).
    ADDED_LATER: ClassVar[dict[str, Any]] = {"schedule": "llada", "top_k": None, "top_p": None, "alg_temp": None,
                                             "eps": 1e-3, "confidence_dtype": "logits", "proposer": None,
                                             "selector": None, "repair": None, "repair_threshold": 0.5,
                                             "repair_budget": 4, "repair_window": 1, "repair_scope": "block",
                                             "repair_every": 16, "repair_stride": 3,
                                             "measure_cache_drift": False, "drift_every": 1,
                                             "compact": False, "cache_drift_threshold": 0.2}

    def validate(self) -> "SamplerConfig":
        """The block layout here; every other setting by the stage that reads it (`Stage.check`)."""
        if self.gen_length <= 0 or self.steps <= 0 or self.block_length <= 0 or self.batch_size <= 0:
            raise BadInput("gen-length, steps, block-length and batch-size must be positive")
        if self.gen_length % self.block_length:
            raise BadInput(f"gen-length {self.gen_length} is not a multiple of block-length {self.block_length}")
        nb = self.gen_length // self.block_length
        if self.steps % nb:
            raise BadInput(f"steps {self.steps} is not a multiple of the number of blocks {nb} "
                           f"(gen-length {self.gen_length} / block-length {self.block_length})")
        if self.steps // nb > self.block_length:
            raise BadInput(f"{self.steps // nb} steps per block exceed the block length {self.block_length}")
        if self.temperature < 0 or self.cfg_scale < 0:
            raise BadInput("temperature and cfg-scale must be >= 0")
        if self.collapse not in (None, "surface", "ctc"):
            raise BadInput(f"unknown collapse {self.collapse!r}; expected surface or ctc")
        if self.repair == "none":
            self.repair = None  # the off switch spelled out: recorded as off, so records stay as without it
        for stage in stage_classes(self):  # unknown names are refused here, in one line
            stage.check(self)
        return self

    @property
    def steps_per_block(self) -> int:
        return self.steps // (self.gen_length // self.block_length)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in self.ADDED_LATER.items():
            if d[k] == v:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SamplerConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
