"""Benchmarks: an abstract interface and a registry (adding a task is one class).

A benchmark loads `Sample`s (from the Hub, or a local `--data-file`), turns one into the prompt text the
model sees, and scores a completion. Scoring returns the record fields `extracted`, `correct`,
`verdict` and `scores` (CONVENTIONS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput

BENCHMARKS: dict[str, type["Benchmark"]] = {}


def register(name: str):
    def deco(cls):
        cls.name = name
        BENCHMARKS[name] = cls
        return cls
    return deco


@dataclass
class Sample:
    native_id: str  # e.g. "17" -> record id "gsm8k/17"
    question: str  # the problem as given (before templates / few-shot)
    reference: str  # full reference: worked solution, tests, or correct option text
    reference_answer: str | None  # final answer where one exists
    meta: dict[str, Any] = field(default_factory=dict)


class Benchmark:
    name = "base"
    default_fewshot = 0
    # What scoring needs besides the text, e.g. code execution; "math" benches share the GSM8K scorer.
    kind = "math"

    def __init__(self, data_file: str | Path | None = None, **options: Any):
        self.data_file = Path(data_file) if data_file else None
        self.options = options

    def load(self) -> list[Sample]:
        raise NotImplementedError

    def prompt(self, sample: Sample, num_fewshot: int) -> str:
        raise NotImplementedError

    def score(self, text: str, sample: Sample) -> dict[str, Any]:
        raise NotImplementedError

    def score_many(self, texts: list[str], samples: list[Sample]) -> list[dict[str, Any]]:
        """Score a batch (code benchmarks override this to run their sandboxes in parallel)."""
        return [self.score(t, s) for t, s in zip(texts, samples)]

    def data_source(self) -> str:
        """Where samples come from (goes into the run config)."""
        return str(self.data_file) if self.data_file else f"builtin:{self.name}"


def get_benchmark(name: str, **kw: Any) -> Benchmark:
    from . import synthetic  # noqa: F401  (registers the built-in benchmarks)
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    if name not in BENCHMARKS:
        raise BadInput(f"unknown benchmark {name!r}; expected one of {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name](**kw)
