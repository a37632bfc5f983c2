"""One-position shift interventions: step hooks that edit the canvas once, mid-decoding.

Each edit is a *source map* over the G response positions: `src[q]` is the position whose token ends
up at q, or -1 for a fresh mask. The same map moves the tokens and the trajectory arrays, so a mode is
one small function, and several points compose (right to left, so each point refers to the canvas
before the edit; `displace --direction left` runs left to right, its mirror image).

    insert   [a b c d] at 1 -> [a _ b c]     a mask enters, the tail moves right, d falls off
    delete   [a b c d] at 1 -> [a c d _]     b leaves, the tail moves left, a mask enters at the end
    displace [a b c d] at 1 -> [a _ b d]     only b moves (onto c); `--direction left`: [b _ c d]
    swap     [a b c d] at 1 -> [a c b d]     b and its right neighbour exchange places (a control)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import StepState

MODES = ("insert", "delete", "displace", "swap")


def _insert(src: list[int], p: int, direction: str) -> None:
    src[p:] = [-1] + src[p:-1]


def _delete(src: list[int], p: int, direction: str) -> None:
    src[p:] = src[p + 1:] + [-1]


def _displace(src: list[int], p: int, direction: str) -> None:
    src[p + (1 if direction == "right" else -1)] = src[p]
    src[p] = -1


def _swap(src: list[int], p: int, direction: str) -> None:
    src[p], src[p + 1] = src[p + 1], src[p]


EDITS = {"insert": _insert, "delete": _delete, "displace": _displace, "swap": _swap}


def candidates(mode: str, gen_length: int, direction: str = "right") -> range:
    """Positions a point may take: every one for insert/delete; those with the needed neighbour otherwise."""
    if mode in ("insert", "delete"):
        return range(gen_length)
    return range(1, gen_length) if (mode == "displace" and direction == "left") else range(gen_length - 1)


def num_points(fraction: float, gen_length: int) -> int:
    """k = round(p * G), at least 1 when p > 0 (half rounds up, not to even)."""
    return 0 if fraction <= 0 else max(1, int(math.floor(fraction * gen_length + 0.5)))


def seeded_points(sample_id: str, mode: str, fraction: float, gen_length: int, direction: str = "right") -> list[int]:
    """The first k of a permutation seeded by the sample id alone: the same on every checkpoint and rerun.

    Insert/delete permute all G positions; swap/displace permute the G-1 neighbour pairs (displace-left
    uses the pair's right end), so all three pick the same pairs. Smaller fractions' points are a prefix.
    """
    seed = int(hashlib.sha256(f"shift:{sample_id.split('@')[0]}".encode()).hexdigest()[:16], 16)
    cand = candidates(mode, gen_length, direction)
    perm = np.random.default_rng(seed).permutation(len(cand))
    return sorted(cand[int(i)] for i in perm[: min(num_points(fraction, gen_length), len(cand))])


def edit_map(mode: str, points: list[int], gen_length: int, direction: str = "right") -> list[int]:
    """The source map of applying `mode` at `points` (response-relative) to a canvas of `gen_length`."""
    src = list(range(gen_length))
    order = sorted(set(points), reverse=not (mode == "displace" and direction == "left"))
    for p in order:
        EDITS[mode](src, p, direction)
    return src


def trigger_label(at: float | None, at_step: int | None) -> str:
    """When a shift fires, as record ids spell it: "at0.5" (a committed fraction) or "step10"."""
    return f"step{at_step}" if at_step is not None else f"at{at:g}"


def when_label(at: float | None, at_step: int | None) -> str:
    """When a shift fires, as tables and the report spell it: "0.5" (a committed fraction) or "step10"."""
    return f"step{at_step}" if at_step is not None else f"{at:g}"


@dataclass(frozen=True)
class Shift:
    """A step hook: when a row's committed fraction reaches `at` (or after `at_step` steps), edit it once.

    Committed is `StepState.committed_fraction`: positions the model committed (`commit_step >= 0`). The
    edit moves the trajectory entries with the tokens and marks moved tokens `commit_step = -1` (the hook
    contract in `StepState`)."""

    mode: str
    fraction: float = 0.0
    at: float | None = 0.5
    at_step: int | None = None
    positions: tuple[int, ...] | None = None  # fixed points instead of seeded ones
    direction: str = "right"
    key: str = "shift"  # where it records itself in StepState.info

    def validate(self, gen_length: int | None = None) -> "Shift":
        if self.mode not in MODES:
            raise BadInput(f"unknown shift mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.direction not in ("right", "left"):
            raise BadInput(f"unknown direction {self.direction!r}; expected right or left")
        if not 0.0 <= self.fraction <= 1.0:
            raise BadInput(f"fraction {self.fraction} is not in [0, 1]")
        if self.at_step is None and (self.at is None or not 0.0 < self.at <= 1.0):
            raise BadInput(f"--at {self.at} is not in (0, 1]")
        if self.at_step is not None and self.at_step < 1:
            raise BadInput(f"--at-step {self.at_step} must be >= 1")
        if self.positions is not None and gen_length is not None:
            cand = candidates(self.mode, gen_length, self.direction)
            bad = [p for p in self.positions if p not in cand]
            if bad:
                raise BadInput(f"--positions {bad} outside {cand.start}..{cand.stop - 1} for {self.mode} "
                               f"with gen-length {gen_length}")
        return self

    @property
    def setting(self) -> str:
        """The record id suffix, e.g. `insert-p0.01-at0.5`, `displace-left-pos12_40-step10`."""
        mode = self.mode + ("-left" if self.mode == "displace" and self.direction == "left" else "")
        where = f"pos{'_'.join(map(str, self.positions))}" if self.positions is not None else f"p{self.fraction:g}"
        return f"{mode}-{where}-{trigger_label(self.at, self.at_step)}"

    def points(self, sample_id: str, gen_length: int) -> list[int]:
        if self.positions is not None:
            return sorted(set(self.positions))
        return seeded_points(sample_id, self.mode, self.fraction, gen_length, self.direction)

    def due(self, state: StepState) -> torch.Tensor:
        """(B,) bool: rows whose trigger has been reached at this step."""
        if self.at_step is not None:
            return torch.full((state.x.shape[0],), state.step + 1 >= self.at_step, dtype=torch.bool)
        return (state.committed_fraction() >= self.at - 1e-9).cpu()

    def __call__(self, state: StepState) -> None:
        done = state.info.setdefault(self.key, {})
        P, G = state.prompt_len, state.gen_length
        due, frac = self.due(state), state.committed_fraction()
        for j, sid in enumerate(state.sample_ids):
            if sid in done or not bool(due[j]):
                continue
            pts = self.points(sid, G)
            before = state.x[j, P:].tolist()
            src = torch.tensor(edit_map(self.mode, pts, G, self.direction), device=state.x.device)  # (G,)
            keep, idx = src >= 0, src.clamp(min=0)
            moved = src != torch.arange(G, device=src.device)
            state.x[j, P:] = torch.where(keep, state.x[j, P:][idx], torch.full_like(idx, state.mask_id))
            for arr, fill in ((state.commit_step, -1), (state.confidence, 0.0), (state.block_of, -1)):
                arr[j] = torch.where(keep, arr[j][idx], torch.full_like(arr[j], fill))
            state.commit_step[j][moved] = -1  # the model never committed these tokens at these positions
            done[sid] = {"mode": self.mode, "direction": self.direction if self.mode == "displace" else None,
                         "fraction": None if self.positions is not None else self.fraction, "k": len(pts), "at": self.at, "at_step": self.at_step,
                         "fired_step": state.step, "committed": round(float(frac[j]), 4), "points": pts,
                         "canvas_before": before, "canvas_after": state.x[j, P:].tolist()}
