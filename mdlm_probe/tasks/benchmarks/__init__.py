"""Benchmarks: an abstract interface and a registry (adding a task is one class).

A benchmark loads `Sample`s (from a local `--data-file`, a data directory, or the Hub), turns one into
the prompt text the model sees, and scores a completion. Scoring returns the record fields `extracted`,
`correct`, `verdict` and `scores` (docs/conventions.md).

Where data comes from, first found wins: `--data-file`; the benchmark's file under the data directory
(`--data-dir DIR`, else the environment variable MDLM_PROBE_DATA; the layout of ../shared/data, e.g.
`gsm8k/test.jsonl`); the Hugging Face Hub. When the Hub cannot be reached (or HF_HUB_OFFLINE is set) the
loader says so in one line at once instead of sitting through the Hub client's retries.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdlm_probe.core.exceptions import BadInput, first_line
from mdlm_probe.core.hub import go_offline, hub_offline, hub_reachable  # noqa: F401 - also imported from here
from mdlm_probe.core.registry import Registry

DATA_ENV = "MDLM_PROBE_DATA"


def _import_builtin() -> None:
    """Import every module of this package: each registers its benchmark (they import this package, so the
    registry's loader imports them at the first lookup, not the top of this file)."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


BENCHMARKS = Registry("benchmark", loader=_import_builtin)  # sets cls.name
register = BENCHMARKS.register  # class decorator: @register("name"); a name already taken is refused


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
    # Files looked for under the data directory when no --data-file is given (first found wins).
    local_files: tuple[str, ...] = ()
    # Named variants `--subset` chooses between (empty: the benchmark has one form).
    subsets: tuple[str, ...] = ()

    def __init__(self, data_file: str | Path | None = None, data_dir: str | Path | None = None, **options: Any):
        self.options = options
        self.data_file = Path(data_file) if data_file else self._find_local(data_dir)

    @classmethod
    def local_file(cls, folder: str | Path, files: tuple[str, ...] | None = None) -> Path | None:
        """The benchmark's file under a data directory laid out like ../shared/data, or None. `files`: the
        instance's `local_files` where they depend on its options (mbpp's subset: a property, which the
        class itself cannot read)."""
        folder = Path(folder).expanduser()
        return next((folder / rel for rel in (cls.local_files if files is None else files)
                     if (folder / rel).is_file()), None)

    def _find_local(self, data_dir: str | Path | None) -> Path | None:
        folder = data_dir or os.environ.get(DATA_ENV)
        if not folder or not self.local_files:
            return None
        found = self.local_file(folder, self.local_files)
        if found is None and data_dir is not None:  # asked for explicitly: say what is missing (the variable falls through)
            raise BadInput(f"--data-dir {folder}: no {' or '.join(self.local_files)} in it")
        return found

    def load(self) -> list[Sample]:
        raise NotImplementedError

    def prompt(self, sample: Sample, num_fewshot: int) -> str:
        raise NotImplementedError

    def score(self, text: str, sample: Sample) -> dict[str, Any]:
        raise NotImplementedError

    def score_many(self, texts: list[str], samples: list[Sample]) -> list[dict[str, Any]]:
        """Score a batch (code benchmarks override this to run their sandboxes in parallel)."""
        return [self.score(t, s) for t, s in zip(texts, samples)]

    def protocol_score(self, texts: list[str], samples: list[Sample], extraction: str) -> list[dict[str, Any]] | None:
        """Score a preset's protocol (runs/protocol.py): the texts its stop rule left -> record fields with
        `protocol_output`, by the reference's `extraction` and the reference's own verdict (code benchmarks
        run the reference's program). None (this default): the answers are compared as numbers
        (runs/protocol.score_text)."""
        return None

    def data_source(self) -> str:
        """Where samples come from (goes into the run config)."""
        return str(self.data_file) if self.data_file else f"builtin:{self.name}"

    def hub_dataset(self, *args: Any, data_file: str, **kw: Any) -> Any:
        """`datasets.load_dataset(*args, **kw)`, or one BadInput line saying what to pass instead when the
        Hub cannot be reached. `data_file` names the file a user would pass as --data-file."""
        fix = f"pass --data-file {data_file}" + (
            f", or --data-dir DIR (or {DATA_ENV}=DIR) holding {self.local_files[0]}" if self.local_files else "")
        what = f"{self.name} data ({args[0]})"
        if not hub_reachable():
            go_offline()  # the Hub client then reads its local cache only, without retries
        try:
            from datasets import load_dataset  # heavy, and needed only for Hub data
            return load_dataset(*args, **kw)
        except Exception as e:  # noqa: BLE001 - offline, gated, renamed ...: all the user's to fix
            if hub_offline():
                raise BadInput(f"{what} is not in the local Hub cache and the Hub is offline; {fix}") from None
            first = first_line(e)
            raise BadInput(f"cannot load {what} from the Hub: {first}; {fix}") from None


# ----------------------------------------------------------------------------------------- registry
def benchmark_names() -> list[str]:
    """Every registered benchmark (the built-in ones imported first, by the registry's loader)."""
    return BENCHMARKS.names()


def get_benchmark(name: str, **kw: Any) -> Benchmark:
    """The benchmark `name` built with `kw`; an unknown name is one line of bad input listing the names."""
    return BENCHMARKS.get(name)(**kw)
