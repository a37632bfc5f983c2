"""Forks: copies of a decode's state taken mid-way, to continue from later (the shift sweeps decode the part a
shifted run shares with its clean twin once, then resume each shifted run from there)."""

from __future__ import annotations

from typing import Callable

import torch

from .state import StepState

Predicate = Callable[[StepState], torch.Tensor]  # state -> (B,) bool: which rows are due


class TakeForks:
    """A step hook that keeps, per name, a fork of the state at the first step where any row is due: the fork
    (`StepState.fork`) if every row is due then, else None (the rows would part ways). Put it first in the hook
    list, so the fork is taken before other hooks edit the canvas. With `halt=True` the decode stops once every
    fork is taken. Resume with `diffuse(..., state=taken[name].resumed(sample_ids))`."""

    def __init__(self, predicates: dict[str, Predicate], halt: bool = False):
        self.pending, self.taken, self.halt = dict(predicates), {}, halt

    def __call__(self, st: StepState) -> None:
        due = {name: p(st) for name, p in self.pending.items()}
        for name, rows in due.items():
            if bool(rows.any()):
                del self.pending[name]
                self.taken[name] = st.fork() if bool(rows.all()) else None
        if self.halt and not self.pending:
            st.halt()
