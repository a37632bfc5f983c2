"""What a report reads: run directories, and invariance or frontier folders (their result file and sub-runs).

Runs are read by `core.rundir`; each run's records are ordered by id here, so that rows, examples and plots
are picked in id order (a rebuild from the same runs gives the same page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import Run, load_runs

STUDY_FILES = {"invariance": "invariance.json", "frontier": "frontier.json"}


def read_runs(run_dirs: Sequence[Path | str]) -> list[Run]:
    """`rundir.load_runs`, each run's records ordered by id (examples and rows are picked in id order)."""
    runs = load_runs(run_dirs)
    for r in runs:
        r.samples = sorted(r.samples, key=lambda x: str(x["id"]))
        r.shift = sorted(r.shift, key=lambda x: str(x["id"]))
    return runs


@dataclass
class Study:
    """An invariance or frontier folder: its result file and the label of each sub-run (runs/<label>/)."""

    kind: str  # "invariance" or "frontier"
    dir: Path
    result: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        rows = self.result.get("variants" if self.kind == "invariance" else "modes") or []
        return [str(r.get("variant" if self.kind == "invariance" else "mode")) for r in rows]


def split_studies(run_dirs: Sequence[Path | str]) -> tuple[list[Path | str], list[Study]]:
    """(plain run directories, invariance/frontier folders), in the order given."""
    plain, studies = [], []
    for d in run_dirs:
        kind = next((k for k, f in STUDY_FILES.items() if (Path(d) / f).is_file()), None)
        if kind is None:
            plain.append(d)
            continue
        path = Path(d) / STUDY_FILES[kind]
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise BadInput(f"{path}: not readable JSON ({e})") from None
        if not isinstance(result, dict):
            raise BadInput(f"{path}: not a {kind} result")
        studies.append(Study(kind, Path(d), result))
    return plain, studies


def read_runs_and_studies(run_dirs: Sequence[Path | str]) -> tuple[list[Run], list[Study]]:
    """`read_runs` over the plain run directories and every study's sub-runs, those labelled
    `<study folder>/<variant>`."""
    plain, studies = split_studies(run_dirs)
    subs = {(s.dir / "runs" / label).resolve(): f"{s.dir.name}/{label}" for s in studies for label in s.labels
            if (s.dir / "runs" / label).is_dir()}
    runs = read_runs([*plain, *subs])
    taken = {r.label for r in runs if r.dir.resolve() not in subs}
    for r in runs:
        if r.dir.resolve() in subs:
            label = subs[r.dir.resolve()]
            r.label = label if label not in taken else f"{label}#{len(taken)}"
            taken.add(r.label)
    return runs, studies
