"""Precision and recall of each failure-pattern detector on the hand-labelled cases.

The cases live in tests/fixtures/miners/<pattern>.jsonl: records (`text`, `reference`, `prompt`, and
`raw_text` where needed) with `label` {pattern: bool} and a `source` (a real model output or handwritten).
Loading and scoring are `mdlm_probe.runs.miners.load_labelled` and `detector_quality`; this script prints them.
Usage:  python analyses/miner_quality.py [FIXTURE_DIR] [--errors]   (--errors lists every miss)
"""

from __future__ import annotations

import sys
from pathlib import Path

from mdlm_probe.runs.miners import detector_quality, load_labelled

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "miners"


def main(argv: list[str]) -> None:
    folder = Path(next((a for a in argv if not a.startswith("--")), FIXTURES))
    q = detector_quality(load_labelled(folder))
    print(f"{'detector':<16}{'pos':>5}{'neg':>5}{'real':>6}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}")
    for name, r in q.items():
        print(f"{name:<16}{r['pos']:>5}{r['neg']:>5}{r['real']:>6}{r['tp']:>5}{r['fp']:>5}{r['fn']:>5}"
              f"{r['precision']:>11.3f}{r['recall']:>8.3f}")
    if "--errors" in argv:
        for name, r in q.items():
            for cid, why in r["misses"]:
                print(f"  {name}: {why}: {cid}")


if __name__ == "__main__":
    main(sys.argv[1:])
