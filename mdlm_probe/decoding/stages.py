"""The stages of one decoding step, chosen from a `SamplerConfig`, and the pipeline they make.

    forward -> [repair] -> edit logits -> propose -> score -> select -> commit -> hooks

Each stage kind has a registry (`FORWARDS`, `PROPOSERS`, `SCORERS`, `SELECTORS`, `SCHEDULES`, `REPAIRS`); the config
names one of each, directly (`cache`, `proposer`, `remasking`, `selector`, `schedule`) or through the rules
of `proposer_name` and `selectors.selector_name`. Each stage class checks the settings it reads
(`check(cfg)`), so `SamplerConfig.validate` is the sum of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import compaction, drift, processors
from .forward import FORWARDS, build_forward
from .processors import Processors, build_processors
from .proposers import PROPOSERS, Proposer
from .repair import REPAIRS, Repair, build_repair, repair_name
from .schedules import SCHEDULES, Schedule
from .scorers import SCORERS, Scorer
from .selectors import SELECTORS, Selector, selector_name
from . import fastdllm_dream  # noqa: F401  (registers Fast-dLLM's Dream selectors and frozen caches)
from . import adaptive_cache  # noqa: F401  (registers the adaptive cache)


def proposer_name(cfg) -> str:
    """The proposer a config asks for: its own, else its schedule's family default."""
    return cfg.proposer or SCHEDULES.get(cfg.schedule).proposals


def stage_classes(cfg) -> list:
    """The class of every stage `cfg` asks for (an unknown name is one line of bad input), and the processors
    module, which checks the filters."""
    return [SCHEDULES.get(cfg.schedule), PROPOSERS.get(proposer_name(cfg)), SCORERS.get(cfg.remasking),
            SELECTORS.get(selector_name(cfg)), FORWARDS.get(cfg.cache), processors, REPAIRS.get(repair_name(cfg)),
            drift, compaction]


@dataclass
class Pipeline:
    """One decode's stages, built for a batch (the forward policy holds that batch's cache)."""

    forward: object  # (x (B, L), start, end) -> (logits (B, L, V), positions forwarded)
    edits: Processors  # logit edits before proposing and before scoring
    propose: Proposer  # (logits (B, R, V), due (B, R)) -> x0 (B, R)
    score: Scorer  # (logits (B, R, V), x0 (B, R)) -> confidence (B, R)
    selector: Selector  # the plan; which positions commit
    every_row: bool  # score the whole canvas (noise drawn over all of it), not only the rows that can commit
    repair: Repair  # (st, logits (B, L, V), masks (B, L)) -> (logits, masks): may reopen or move committed tokens


def build_pipeline(model, cfg, attention_mask: torch.Tensor | None, prompt_index: torch.Tensor) -> Pipeline:
    schedule: Schedule = SCHEDULES.get(cfg.schedule).from_config(cfg)
    proposer = PROPOSERS.get(proposer_name(cfg))(cfg.temperature)
    scorer = SCORERS.get(cfg.remasking)()
    selector = SELECTORS.get(selector_name(cfg))(cfg, schedule)
    edits = build_processors(cfg, model, first=proposer.processors(), extra=selector.processors(model))
    forward = build_forward(model, cfg, attention_mask, prompt_index)
    measured = drift.wrap(forward, model, cfg, attention_mask, prompt_index, build_forward)  # off: forward itself
    return Pipeline(forward=measured, edits=edits, propose=proposer, score=scorer, selector=selector,
                    every_row=cfg.temperature > 0 or scorer.every_row,
                    repair=build_repair(model, cfg, forward, selector))
