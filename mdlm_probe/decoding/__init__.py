"""Decoding: the sampler loop and its stages (docs/sampler.md).

    config      SamplerConfig, the settings (each checked by the stage that reads it)
    loop        diffuse: forward -> edit logits -> propose -> score -> select -> commit -> hooks
    stages      which stage of each kind a config asks for; the pipeline
    forward     forward policies: exact, prefix and dual block KV caches; guidance
    adaptive_cache  the adaptive (write-through, drift-triggered) KV cache; compaction: finished rows leave the batch
    processors  logit edits; proposers, scorers, selectors, schedules: the other stages
    repair      decode-time repairs of committed tokens (off by default)
    state       StepState, what the loop advances and hooks see; forks: TakeForks
    generate    texts in, records out; settings: resolve_sampler
"""

from .config import SamplerConfig
from .forks import TakeForks
from .forward import FORWARDS
from .generate import encode_prompts, generate, pad_left
from .loop import Decoded, diffuse
from .proposers import PROPOSERS, add_gumbel_noise
from .repair import REPAIRS
from .schedules import SCHEDULES, num_transfer_tokens
from .scorers import SCORERS
from .selectors import SELECTORS
from .settings import resolve_sampler
from .state import StepHook, StepState

REMASKING = SCORERS  # the remasking rules are the scorers (the name the CLI and earlier releases use)
CACHES = FORWARDS  # the cache policies are the forward policies

__all__ = ["SamplerConfig", "StepState", "StepHook", "Decoded", "TakeForks", "diffuse", "generate",
           "resolve_sampler", "encode_prompts", "pad_left", "add_gumbel_noise", "num_transfer_tokens",
           "FORWARDS", "PROPOSERS", "SCORERS", "SELECTORS", "SCHEDULES", "REPAIRS", "REMASKING", "CACHES"]
