"""The state of one decode: what the sampler loop advances, what hooks see, and what a fork copies."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

KEPT_INFO = ("repair",)  # info keys a fork keeps (decoding/repair.py's log); hooks' records start afresh


@dataclass
class StepState:
    """One decode of a left-padded batch, between steps. P = padded prompt length, G = gen length.

    The loop advances it: a step forwards the canvas, commits some proposals into `x` and records them
    in the trajectories (`commit`), then calls every hook with this state, then moves on (`i`, `step`).

    Hook contract. A hook is `hook(state) -> None`, called after each step's commits. It may
    - edit the response part of `x` in place (the prompt stays as it is), and
    - move the trajectory entries (`commit_step`, `confidence`, `block_of`) with the tokens it moves
      (`commit_step = -1` for a token the model did not commit at its new position, as the shifts do),
    - record what it did in `info[key][sample_id]` (it lands in the record's `hook_info[key]`).
    It must leave everything else alone (`logits`, `plan`, counters, RNG). After the hooks, if the number
    of masks open up to the current block's end changed, the sampler re-plans the rest of the block from
    the masks left (see `schedules.py`), so decoding still ends with no masks; with the KV cache, an edit
    to a cached position makes the next forward a full one.

    Committed (one definition, `committed_fraction`): a response position the *model* has committed,
    i.e. `commit_step >= 0`. A [MASK] the model itself proposed and committed counts; a token a hook
    placed or moved does not. The shift triggers (`--at`) read this.

    A fork is `fork()`, a copy taken right after a step's commits, before its hooks (`forks.TakeForks`
    takes them as the first hook); `diffuse(..., state=fork.resumed(ids))` runs that step's hooks and goes
    on as if never interrupted. A hook may `halt()` the decode: it returns after the hooks of that step.
    """

    x: torch.Tensor  # (B, P + G) the canvas
    logits: torch.Tensor | None  # (B, R, V) of the step just taken, as the scorer saw them (canvas rows `rows`)
    step: int  # global step index, 0-based, of the step just taken
    block: int
    prompt_len: int
    gen_length: int
    block_length: int
    mask_id: int
    commit_step: torch.Tensor  # (B, G) long, -1 = not committed by the model
    confidence: torch.Tensor  # (B, G) float, the rule's score each committed token won with
    block_of: torch.Tensor  # (B, G) long, the block each token was committed in, -1 = none
    sample_ids: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # hooks record what they did here, per row
    plan: torch.Tensor | None = None  # (B, steps) commits per step of the current block (the schedule's)
    i: int = 0  # the step's index within its block
    nfe: int = 0  # forward passes so far
    tokens_forwarded: int = 0  # positions forwarded so far, summed over the batch
    rows: slice | None = None  # the canvas rows the step just taken scored (loop.scored_rows)
    stepped: bool = False  # a step's commits are in and its hooks have not run yet
    halted: bool = False  # a hook asked the decode to stop after this step's hooks
    rng: torch.Tensor | None = None  # in a fork: the CPU generator state (T > 0 and random remasking draw)
    cuda_rng: torch.Tensor | None = None

    @classmethod
    def start(cls, prompt: torch.Tensor, gen_length: int, block_length: int, mask_id: int,
              sample_ids=(), device=None) -> "StepState":
        """Prompt (B, P) followed by G masks, nothing committed, before the first step of block 0."""
        B, P = prompt.shape
        x = torch.full((B, P + gen_length), mask_id, dtype=torch.long, device=device)
        x[:, :P] = prompt.to(device)
        return cls(x=x, logits=None, step=0, block=0, prompt_len=P, gen_length=gen_length,
                   block_length=block_length, mask_id=mask_id,
                   commit_step=torch.full((B, gen_length), -1, dtype=torch.long, device=device),
                   confidence=torch.zeros((B, gen_length), dtype=torch.float32, device=device),
                   block_of=torch.full((B, gen_length), -1, dtype=torch.long, device=device),
                   sample_ids=list(sample_ids))

    # ---- reading --------------------------------------------------------------------------------
    @property
    def response(self) -> torch.Tensor:
        return self.x[:, self.prompt_len:]

    @property
    def block_end(self) -> int:
        """Canvas index where the current block ends; positions from here on belong to later blocks."""
        return self.prompt_len + (self.block + 1) * self.block_length

    def masks_open(self) -> torch.Tensor:
        """(B,) masks in the response up to the current block's end (earlier blocks' leftovers included)."""
        return (self.x[:, self.prompt_len:self.block_end] == self.mask_id).sum(1)

    def masks_in_block(self) -> torch.Tensor:
        """(B,) masks in the current block alone: what LLaDA's plan counts at a block's start."""
        return (self.x[:, self.block_end - self.block_length:self.block_end] == self.mask_id).sum(1)

    def committed_fraction(self) -> torch.Tensor:
        """(B,) share of response positions the model has committed (`commit_step >= 0`; see above)."""
        return (self.commit_step >= 0).float().mean(1)

    # ---- advancing ------------------------------------------------------------------------------
    def commit(self, transfer: torch.Tensor, x0: torch.Tensor, conf: torch.Tensor) -> None:
        """Write the proposals x0 (B, L) where transfer (B, L) bool, and record step, confidence, block."""
        self.x[transfer] = x0[transfer]
        g = transfer[:, self.prompt_len:]
        self.commit_step[g] = self.step
        self.confidence[g] = conf[:, self.prompt_len:][g].float()
        self.block_of[g] = self.block

    def halt(self) -> None:
        """Stop the decode once this step's hooks have run (the canvas stays as it is)."""
        self.halted = True

    # ---- forks ----------------------------------------------------------------------------------
    def fork(self) -> "StepState":
        """A copy to resume from later: tensors cloned, the RNG states taken now; hooks' `info` not kept
        (the repair stage's log is: see KEPT_INFO)."""
        dev = self.x.device
        return replace(self, **{k: v.clone() for k, v in self._tensors().items()}, info=self._kept_info(),
                       sample_ids=list(self.sample_ids), rng=torch.get_rng_state(),
                       cuda_rng=torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None)

    def resumed(self, sample_ids=()) -> "StepState":
        """A fresh copy of this fork to decode on (the fork stays reusable), with its RNG states restored."""
        st = replace(self, **{k: v.clone() for k, v in self._tensors().items()}, info=self._kept_info(),
                     sample_ids=list(sample_ids), halted=False)
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng, self.x.device)
        return st

    def _kept_info(self) -> dict[str, Any]:
        """The `info` a fork keeps: the repair stage's log (part of the decode so far, and its budget), not hooks'."""
        return copy.deepcopy({k: v for k, v in self.info.items() if k in KEPT_INFO})

    def _tensors(self) -> dict[str, torch.Tensor]:
        names = ("x", "logits", "commit_step", "confidence", "block_of", "plan")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


StepHook = Callable[[StepState], None]
