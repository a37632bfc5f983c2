"""Precision and recall of each failure-pattern detector on the hand-labelled cases.

The cases live in tests/fixtures/miners/<pattern>.jsonl: records (`text`, `reference`, `prompt`, and
`raw_text` where needed) with `label` {pattern: bool} and a `source` (a real model output or handwritten).
Usage:  python analyses/miner_quality.py [FIXTURE_DIR] [--errors]   (--errors lists every miss)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mdlm_probe.miners import DETECTORS

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "miners"


def load_cases(folder: Path = FIXTURES) -> list[dict]:
    cases = []
    for f in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if line.strip():
                case = json.loads(line)
                case.setdefault("id", f"{f.stem}:{n}")
                cases.append(case)
    return cases


def quality(cases: list[dict]) -> dict[str, dict]:
    """Per detector: tp, fp, fn, tn, precision, recall over the cases labelled for it, and the misses."""
    out = {}
    for name, fn in DETECTORS.items():
        tp = fp = fnn = tn = 0
        real = 0
        misses = []
        for c in cases:
            if name not in c.get("label", {}):
                continue
            want, got = bool(c["label"][name]), bool(fn(c))
            real += not str(c.get("source", "")).startswith("handwritten")
            tp += want and got
            fp += got and not want
            fnn += want and not got
            tn += not want and not got
            if want != got:
                misses.append((c["id"], "missed" if want else "false alarm"))
        out[name] = {"pos": tp + fnn, "neg": fp + tn, "real": real, "tp": tp, "fp": fp, "fn": fnn, "tn": tn,
                     "precision": tp / (tp + fp) if tp + fp else float("nan"),
                     "recall": tp / (tp + fnn) if tp + fnn else float("nan"), "misses": misses}
    return out


def main(argv: list[str]) -> None:
    folder = Path(next((a for a in argv if not a.startswith("--")), FIXTURES))
    q = quality(load_cases(folder))
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
