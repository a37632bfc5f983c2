"""Rebuild tests/fixtures/miners/<pattern>.jsonl: the real outputs already there, then the handwritten cases.

The real rows are the frozen record of a one-off harvest: harvest.py decoded held-out synthetic problems
with partly trained tiny-ce checkpoints (step 250 of a first run, step 1600 of the current one, saved as
checkpoints by mkckpt.py) and tiny-random at T = 1, and each kept row was picked and labelled by hand
(its `source` says which model, problem and collapse map). Those checkpoints are not kept, so the real
rows are carried over from the fixture files as they are; new real rows are appended to a fixture by hand
(with their `source`). The handwritten rows are regenerated from hand.py, so edit cases there and rerun:

    python analyses/miner_cases/build.py [--fixtures DIR] [--out DIR] [--check]

--fixtures: where the real rows are read (default: the repository's tests/fixtures/miners);
--out: where the files are written (default: the same folder); --check: write nothing, exit 1 when a
file would change. Ids are renumbered `<pattern>/<n>` in file order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # hand.py beside this script (not a package)
import hand  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "miners"


def rows_for(pattern: str, fixtures: Path) -> list[dict]:
    f = fixtures / f"{pattern}.jsonl"
    old = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()] if f.is_file() else []
    rows = [r for r in old if not str(r.get("source", "")).startswith("handwritten")]
    rows += [{"id": None, **c} for c in hand.CASES if pattern in c["label"]]
    for n, row in enumerate(rows):
        row["id"] = f"{pattern}/{n}"
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", type=Path, default=FIXTURES)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    out = a.out or a.fixtures
    patterns = sorted({p for c in hand.CASES for p in c["label"]} | {f.stem for f in a.fixtures.glob("*.jsonl")})
    changed = []
    for p in patterns:
        rows = rows_for(p, a.fixtures)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        f = out / f"{p}.jsonl"
        if not f.is_file() or f.read_text(encoding="utf-8") != text:
            changed.append(f.name)
        if not a.check:
            out.mkdir(parents=True, exist_ok=True)
            f.write_text(text, encoding="utf-8")
        real = sum(not r["source"].startswith("handwritten") for r in rows)
        print(f"{p}: {len(rows)} cases, {sum(r['label'][p] for r in rows)} positive, {real} real")
    print(("would change: " if a.check else "changed: ") + (", ".join(changed) or "nothing"))
    return 1 if a.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
