"""The report's open-ended section: Arena-Hard win rates of runs judged with `mdlm-probe judge` (read from
RUN_DIR/arena/vs_<baseline>/summary.json), the paired clean-vs-shifted difference, the judge that produced
them (model, endpoint, prompt hashes), and questions where the shift changed the verdict, as diffs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mdlm_probe.core.rundir import Run
from mdlm_probe.runs.arena import ARENA_DIR, read_summaries
from mdlm_probe.tasks.benchmarks.arena_hard import safe_name
from .render import diff_segments
from .sections import _df_table

MAX_EXAMPLES = 3  # per clean/shifted pair


def _pct(x: Any) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}"


def _pp(x: Any) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:+.1f}"


def _labels(folder: Path, judge: str, model: str) -> dict[str, list]:
    """uid -> [game 1 label, game 2 label] from the Arena-Hard-format judgments the judge run wrote."""
    p = folder / "model_judgment" / safe_name(judge) / f"{safe_name(model)}.jsonl"
    out = {}
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines():
            j = json.loads(line)
            out[j["uid"]] = [None if g is None else g.get("score") for g in j["games"]]
    return out


def _examples(run: Run, folder: Path, judge: str, pair: dict[str, Any]) -> list[dict[str, Any]]:
    texts = {(r["ckpt"], r["id"]): r for r in run.shift}
    ckpt = pair["clean"].split("@")[0]
    clean_l, shift_l = _labels(folder, judge, pair["clean"]), _labels(folder, judge, pair["shifted"])
    items = []
    for uid in pair["changed"][:MAX_EXAMPLES]:
        c = texts.get((ckpt, f"arena-hard/{uid}@clean"))
        s = texts.get((ckpt, f"arena-hard/{uid}@{pair['shifted'].split('@', 1)[1]}"))
        if c is None or s is None:
            continue
        left, right = diff_segments(c.get("text") or "", s.get("text") or "")
        items.append({"title": f"{run.label} · {uid} · {pair['shifted']}", "question": c.get("question") or "",
                      "left_label": f"clean (verdicts {' / '.join(map(str, clean_l.get(uid, [])))})",
                      "right_label": f"shifted (verdicts {' / '.join(map(str, shift_l.get(uid, [])))})",
                      "left": left, "right": right})
    return items


def section_open_ended(runs: list[Run]) -> dict[str, Any] | None:
    """Win rates, paired differences, judges and changed-verdict examples; None when no run was judged."""
    rows, pair_rows, judges, examples = [], [], [], []
    for run in runs:
        for base, s in read_summaries(run.dir).items():
            j, level = s.get("judge") or {}, "95%" if s.get("method") == "legacy" else "90%"
            prompts = (j.get("prompts") or {})
            judges.append({"run": run.label, "baseline": j.get("baseline"), "judge_model": j.get("judge_model"),
                           "endpoint": j.get("endpoint"), "method": f"{s.get('method')} ({level})",
                           "system_sha256": (prompts.get("sha256") or {}).get("system_prompt"),
                           "template_sha256": (prompts.get("sha256") or {}).get("template"),
                           "known": ", ".join(v for v in (prompts.get("known") or {}).values() if v) or "no",
                           "config": prompts.get("config")})
            for m, r in s["models"].items():
                rows.append({"run": run.label, "model": m, "baseline": r["baseline"], "win rate %": _pct(r["win_rate"]),
                             f"CI {level}": f"[{_pct(r['lower'])}, {_pct(r['upper'])}]",
                             "legacy BT %": _pct((r.get("legacy_bt") or {}).get("win_rate")),
                             "main mean %": _pct((r.get("main_plain") or {}).get("win_rate")),
                             "judged": f"{r['judged']}/{r['games']}", "no verdict": r["no_verdict"], "failed": r["failed"]})
            for p in s.get("pairs") or []:
                pair_rows.append({"run": run.label, "clean": p["clean"], "shifted": p["shifted"], "questions": p["n"],
                                  "clean %": _pct(p["clean_mean"]), "shifted %": _pct(p["shifted_mean"]),
                                  "shifted - clean (pp)": _pp(p["diff"]), "CI 95%": f"[{_pp(p['lower'])}, {_pp(p['upper'])}]",
                                  "verdict changed": len(p["changed"])})
                examples += _examples(run, run.dir / ARENA_DIR / f"vs_{base}", j.get("judge_model") or "", p)
    if not rows:
        return None
    wins, pairs = pd.DataFrame(rows), pd.DataFrame(pair_rows)
    return {"table": _df_table(wins), "pairs": _df_table(pairs) if pair_rows else None, "judges": judges,
            "examples": examples, "frames": {"arena_win_rates": wins, "arena_pairs": pairs}}
