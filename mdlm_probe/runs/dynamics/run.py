"""`dynamics RUN_DIR...`: read each run's records, analyse every trajectory, write `dynamics.jsonl` and
`dynamics_summary.csv` into the run directory, and return the summaries for the command and the report."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import RecordWriter
from mdlm_probe.core.rundir import load_run

from .aggregate import SUMMARY_FIELDS, condition, rows_of, summarise
from .align import load_vocab
from .record import analyse_record

DYNAMICS, DYNAMICS_SUMMARY = "dynamics.jsonl", "dynamics_summary.csv"


@dataclass
class RunDynamics:
    dir: Path
    label: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # dynamics.jsonl lines
    summary: list[dict[str, Any]] = field(default_factory=list)  # dynamics_summary.csv rows
    skipped: int = 0  # records without a trajectory


def has_trajectory(rec: dict[str, Any]) -> bool:
    t = rec.get("trajectory")
    return isinstance(t, dict) and isinstance(t.get("commit_step"), list) and len(t["commit_step"]) > 0 \
        and len(t["commit_step"]) == len(rec.get("output_ids") or [])


def analyse_run(path: Path | str, write: bool = True) -> RunDynamics:
    """One run directory (eval, shift, or lm-eval run that kept trajectories). Bad input: not a run, no records,
    no record with a trajectory."""
    run = load_run(path)
    if not run.records:
        raise BadInput(f"{run.dir} holds no records (samples.jsonl or shift.jsonl) to analyse")
    usable = [r for r in run.records if has_trajectory(r)]
    if not usable:
        raise BadInput(f"{run.dir}: no record has a trajectory (commit steps per position); dynamics needs a "
                       "run decoded by mdlm-probe's sampler (eval, shift, lm-eval with its records)")
    vocab = load_vocab(run.config or {"checkpoint": usable[0].get("ckpt")})
    res = RunDynamics(dir=run.dir, label=run.label, skipped=len(run.records) - len(usable))
    for rec in usable:
        row = analyse_record(rec, vocab)
        row["condition"] = condition(rec)
        res.rows.append(row)
    res.summary = summarise(run.label, res.rows)
    if write:
        write_outputs(res)
    return res


def write_outputs(res: RunDynamics) -> None:
    """dynamics.jsonl (replaced: appended and flushed line by line) and dynamics_summary.csv."""
    out = res.dir / DYNAMICS
    out.unlink(missing_ok=True)
    with RecordWriter(out) as w:
        for row in res.rows:
            w.write(row)
    tmp = res.dir / f".{DYNAMICS_SUMMARY}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
        wr.writeheader()
        wr.writerows(res.summary)
    tmp.replace(res.dir / DYNAMICS_SUMMARY)


def analyse_runs(paths: Sequence[Path | str], write: bool = True) -> list[RunDynamics]:
    if not paths:
        raise BadInput("give at least one run directory")
    return [analyse_run(p, write=write) for p in paths]


# ----------------------------------------------------------------------------------------- printing
def _fmt(r: dict[str, Any]) -> str:
    if r["value"] is None:
        return "n/a"
    ci = "" if r["ci_low"] is None else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return f"{r['value']:.3f}{ci}"


def table(results: Sequence[RunDynamics], section: str, metrics: Sequence[str] | None = None) -> str:
    """A plain-text table: one line per (run, checkpoint, condition, metric)."""
    lines = []
    for res in results:
        for r in rows_of(res.summary, section):
            if metrics is not None and r["metric"] not in metrics:
                continue
            lines.append(f"  {r['ckpt']:<18} {r['condition']:<22} {r['metric']:<34} n={r['n']:<6} {_fmt(r)}"
                         + (f"  ({r['note']})" if r["note"] and section == "predictors" else ""))
    return "\n".join(lines)


def tz_sentence(results: Sequence[RunDynamics]) -> list[str]:
    """'answers whose trailing zeros committed before their leading digits were wrong N times as often'."""
    out = []
    for res in results:
        for r in rows_of(res.summary, "predictors"):
            if r["metric"] != "rr:answer_tz_before_lead" or r["value"] is None:
                continue
            out.append(f"  {r['ckpt']} ({r['condition']}): answers whose trailing zeros committed before their "
                       f"leading digit were wrong {r['value']:.2f} times as often "
                       f"(95% CI {r['ci_low']:.2f}-{r['ci_high']:.2f}; {r['note']})")
    return out


def format_tables(results: Sequence[RunDynamics]) -> str:
    parts = ["Commit order and EOS (mean or share, 95% CI)",
             table(results, "outcome", ["accuracy"]),
             table(results, "order", ["tau_b", "tau_b_content", "parallel_mean", "parallel_max", "share_before_content"]),
             table(results, "eos", ["length_fixed_frac", "eos_before_answer", "premature"]),
             "Numbers", table(results, "numbers", ["numbers:tz_before_lead", "answers:tz_before_lead",
                                                   "flagged:tz_before_lead", "answers:same_step"]),
             "Confidence at commit, right vs wrong tokens", table(results, "tokens"),
             "Artifact origins in unperturbed outputs (share of artifacts, Wilson 95% CI)",
             table(results, "origins"),
             "Predictors of a wrong answer", table(results, "predictors"), *tz_sentence(results),
             "Cache drift", table(results, "drift")]
    skipped = sum(r.skipped for r in results)
    if skipped:
        parts.append(f"{skipped} record(s) without a trajectory skipped")
    return "\n".join(p for p in parts if p)


