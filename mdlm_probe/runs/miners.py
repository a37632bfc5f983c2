"""Failure-pattern detectors: small functions over one sample record (docs/conventions.md), registered by name.

Each detector reads `text` (the scored output) against `reference` and the question the record answers
(`question`: the prompt without its few-shot exemplars), and `raw_text` where the pattern lives before
collapse, and returns `Finding`s, each with an evidence span `[start, end)` into `text`. Detectors are
deliberately literal, so a finding can be checked by eye; `detector_quality` measures their precision and
recall on hand-labelled cases (tests/fixtures/miners/, printed by analyses/miner_quality.py).
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import record_key
from mdlm_probe.core.registry import Registry
from mdlm_probe.core.rundir import load_run

# pattern -> detector (record -> findings), in registration order: the order patterns are listed and mined in
DETECTORS = Registry("detector")
NEEDS_REFERENCE = {"trailing-zero", "repeated-token", "misplaced-char", "shift-artifact"}


@dataclass
class Finding:
    pattern: str
    start: int  # evidence span in `text`, [start, end)
    end: int
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detector(name: str):
    """Function decorator: register a detector of the pattern `name`; a name already taken is refused."""
    def deco(fn):
        DETECTORS.register(name)(fn)
        fn.pattern = name
        return fn
    return deco


def mine(rec: dict[str, Any], patterns: Iterable[str] | None = None) -> list[Finding]:
    """All findings of the chosen detectors (default: all) on one record."""
    out: list[Finding] = []
    for name in (patterns or DETECTORS):
        out += DETECTORS[name](rec)
    return out


def has_reference(rec: dict[str, Any]) -> bool:
    return isinstance(rec.get("reference"), str) and bool(rec["reference"].strip())


# ----------------------------------------------------------------------------------------- numbers and words
# A number as GSM8K writes it: digits with optional thousands commas and decimals ("$1,200.50" -> 1200.5).
NUM = re.compile(r"(?<![\d.])\d(?:[\d,]*\d)?(?:\.\d+)?")
WORD = re.compile(r"[A-Za-z]+|\d(?:[\d,.]*\d)?")
CALC = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations "<<2*3=6>>"


def norm_num(s: str) -> str:
    """'1,200' -> '1200', '12.50' -> '12.5', '7.0' -> '7', '007' -> '7'."""
    s = s.replace(",", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.lstrip("0") or "0"


def numbers(text: str) -> list[tuple[str, int, int]]:
    """(normalised value, start, end) of each number in `text`."""
    return [(norm_num(m.group()), m.start(), m.end()) for m in NUM.finditer(text or "")]


# Where a prompt's question starts: lm-eval's "Question:" (gsm8k), "Q:" (gsm8k-cot) or "Problem:", at a line
# start, so a chat template wrapped around the whole prompt leaves the last one in place.
QUESTION = re.compile(r"(?m)^[ \t]*(?:Question|Q|Problem)[ \t]*:")


def question(rec: dict[str, Any]) -> str:
    """The question the record answers: the prompt from its last question marker on, so a few-shot prompt's
    exemplars (and a chat template's system text before it) are left out; the whole prompt when it has none."""
    prompt = rec.get("prompt") or ""
    last = None
    for last in QUESTION.finditer(prompt):
        pass
    return prompt[last.start():] if last else prompt


def context_numbers(rec: dict[str, Any]) -> set[str]:
    """Numbers the reference or the question itself uses (never counted as errors)."""
    return {n for n, _, _ in numbers(rec.get("reference") or "") + numbers(question(rec))}


def reference_answer(rec: dict[str, Any]) -> str | None:
    """The reference's final answer as a plain number ('1,200' -> '1200'): `reference_answer`, else the
    reference's `#### N` line; None when it is no unsigned number."""
    ans = rec.get("reference_answer")
    if not isinstance(ans, str) and "####" in (rec.get("reference") or ""):
        ans = rec["reference"].rsplit("####", 1)[1]
    ans = (ans or "").strip().lstrip("$").strip() if isinstance(ans, str) else ""
    return norm_num(ans) if NUM.fullmatch(ans) else None


# A final answer as the scorer's strict rule writes it, plus "#" runs ("####" merged by the ctc map).
ANSWER = re.compile(r"(?:#+|[Tt]he (?:final )?answer is:?)[ \t]*\$?[ \t]*(" + NUM.pattern + ")")


def final_answer(rec: dict[str, Any]) -> tuple[str, int, int] | None:
    """(value, start, end) of the output's last marked answer (`#### N`, `# N`, "The answer is N") before
    any made-up next question (a canvas that runs on past its answer); None when it marks none."""
    t = text_of(rec)
    stop = QUESTION.search(t)
    hits = list(ANSWER.finditer(t, 0, stop.start() if stop else len(t)))
    return (norm_num(hits[-1].group(1)), *hits[-1].span(1)) if hits else None


def text_of(rec: dict[str, Any]) -> str:
    return rec.get("text") or ""


# ----------------------------------------------------------------------------------------- trailing-zero
@detector("trailing-zero")
def trailing_zero(rec: dict[str, Any]) -> list[Finding]:
    """A number equal to a reference number with trailing zeros removed (1200 -> 120 or 12; 2,000 -> 200).

    In the body, only candidates of two or more digits count, and never a number the reference or the
    question uses itself. The final answer counts whenever it equals the reference answer with one or
    more trailing zeros removed, whatever its length (`#### 5` for 500).
    """
    if not has_reference(rec):
        return []
    out = []
    t = text_of(rec)
    ref, final = reference_answer(rec), final_answer(rec)
    if ref and final and "." not in ref + final[0]:
        zeros = len(ref) - len(ref.rstrip("0"))
        k = len(ref) - len(final[0])
        if 1 <= k <= zeros and ref[:-k] == final[0]:
            v, a, b = final
            out.append(Finding("trailing-zero", a, b, t[a:b],
                               {"number": v, "reference_number": ref, "zeros_lost": k, "final_answer": True}))
    dropped: dict[str, tuple[str, int]] = {}  # candidate -> (reference number, zeros lost)
    for n, _, _ in numbers(rec["reference"]):
        if "." in n:
            continue  # only whole numbers lose "trailing zeros" in this sense
        for k in range(1, len(n) - len(n.rstrip("0")) + 1):
            if len(n) - k >= 2:  # a lone digit ("2000" -> "2") matches by chance far too often
                dropped.setdefault(n[:-k], (n, k))  # the fewest zeros lost wins
    seen = context_numbers(rec)
    taken = {(f.start, f.end) for f in out}
    for n, a, b in numbers(t):
        if n in dropped and n not in seen and (a, b) not in taken:
            ref_n, k = dropped[n]
            out.append(Finding("trailing-zero", a, b, t[a:b], {"number": n, "reference_number": ref_n, "zeros_lost": k}))
    return sorted(out, key=lambda f: f.start)


# ----------------------------------------------------------------------------------------- repeated-token
UNIT = re.compile(r"\d(?:[\d,.]*\d)?|[A-Za-z]+|([^\w\s])\1*")  # a number, a word, or a run of one symbol


def _units(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in UNIT.finditer(text)]


def _repeats(units: list[tuple[str, int, int]], max_n: int = 3) -> list[tuple[int, int]]:
    """(i, n): units[i:i+n] == units[i+n:i+2n], back to back (only whitespace between)."""
    out, i = [], 0
    while i < len(units):
        for n in range(1, max_n + 1):
            a, b = units[i:i + n], units[i + n:i + 2 * n]
            if len(b) == n and [u[0] for u in a] == [u[0] for u in b]:
                out.append((i, n))
                i += 2 * n - 1
                break
        i += 1
    return out


def _is_chain(units, i: int) -> bool:
    """"=360 360-80": an equation's result restated to start the next one (the GSM8K/synthetic idiom)."""
    return (i > 0 and units[i - 1][0] == "=" and units[i][0][0].isdigit()
            and i + 2 < len(units) and units[i + 2][0][0] in "+-*/x×")


@detector("repeated-token")
def repeated_token(rec: dict[str, Any]) -> list[Finding]:
    """A unit or short n-gram (<= 3) repeated back to back, or a symbol run longer than the reference's."""
    if not has_reference(rec):
        return []
    t = text_of(rec)
    ctx = (rec.get("reference") or "") + "\n" + question(rec)
    ctx_units = _units(ctx)
    ctx_reps = {tuple(u[0] for u in ctx_units[i:i + 2 * n]) for i, n in _repeats(ctx_units)
                if not (n == 1 and _is_chain(ctx_units, i))}
    longest: dict[str, int] = {}
    for u, _, _ in ctx_units:
        if not u[0].isalnum():
            longest[u[0]] = max(longest.get(u[0], 0), len(u))
    units = _units(t)
    out = []
    for i, n in _repeats(units):
        key = tuple(u[0] for u in units[i:i + 2 * n])
        if key in ctx_reps or (n == 1 and _is_chain(units, i)) or (n == 2 and key[1] in ",;"):  # "3, 3, 3": a list
            continue
        a, b = units[i][1], units[i + 2 * n - 1][2]
        out.append(Finding("repeated-token", a, b, t[a:b], {"unit": " ".join(key[:n]), "n": n}))
    for u, a, b in units:  # "==", "#####": one symbol token repeated past anything the reference does
        if not u[0].isalnum() and len(u) > 1 and len(u) > longest.get(u[0], 1) and u != "...":
            out.append(Finding("repeated-token", a, b, u, {"unit": u[0], "run": len(u)}))
    return sorted(out, key=lambda f: f.start)


# ----------------------------------------------------------------------------------------- misplaced-char
def _transpositions(w: str) -> set[str]:
    """Every distinct string one adjacent swap away from `w` (= one character moved by one place)."""
    return {w[:i] + w[i + 1] + w[i] + w[i + 2:] for i in range(len(w) - 1) if w[i] != w[i + 1]}


@detector("misplaced-char")
def misplaced_char(rec: dict[str, Any]) -> list[Finding]:
    """A number or word one adjacent transposition away from a reference one ("12.5" for "1.25", "153" for "135")."""
    if not has_reference(rec):
        return []
    ctx = CALC.sub(" ", rec["reference"]) + "\n" + question(rec)
    ctx_words = {m.group() for m in WORD.finditer(ctx)}
    ctx_lower = {w.lower() for w in ctx_words}
    swapped: dict[str, str] = {}
    for w in sorted(ctx_words):
        if len(w) >= (2 if w[0].isdigit() else 3):  # "on"/"no" are both words too often
            for s in _transpositions(w):
                swapped.setdefault(s, w)
    t = text_of(rec)
    out = []
    for m in WORD.finditer(t):
        w = m.group()
        if w in swapped and w not in ctx_words and w.lower() not in ctx_lower:
            out.append(Finding("misplaced-char", m.start(), m.end(), w, {"reference_word": swapped[w]}))
    return out


# ----------------------------------------------------------------------------------------- shift-artifact
SHIFT_CONTEXT = 4  # intact characters required on each side of the one inserted / dropped character


def _occurs(s: str, *texts: str) -> bool:
    return any(s in x for x in texts)


def _formatting(ch: str, before: str, after: str) -> bool:
    """An edit that only changes formatting: "$", thousands/clause commas, a sentence's full stop, or a
    space beside an operator ("9*60 =540"). A space between two alphanumerics ("madea") still counts."""
    if ch in "$,":
        return True
    if ch == ".":
        return not (before[-1:].isdigit() and after[:1].isdigit())  # "12.5" vs "125" is not formatting
    if ch.isspace():
        return not (before[-1:].isalnum() and after[:1].isalnum())
    return False


@detector("shift-artifact")
def shift_artifact(rec: dict[str, Any]) -> list[Finding]:
    """A stretch of output equal to a reference stretch with one token (character) inserted or dropped.

    The tiny models' tokens are characters, so the unit is a character: SHIFT_CONTEXT intact characters on
    each side (fewer where both texts start or end there), formatting-only edits ignored, and the
    output stretch itself must not occur in the reference or prompt.
    """
    if not has_reference(rec):
        return []
    ref = CALC.sub("", rec["reference"])
    prompt = question(rec)
    t, k = text_of(rec), SHIFT_CONTEXT
    out, last_end = [], -1
    for i in range(1, len(t)):
        a = max(0, i - k)
        left = t[a:i]
        anchor = "^" if i < k else ""  # a short left context must start both texts
        found = None
        # inserted: t[i] is extra, left + t[i+1:i+1+k] is a reference stretch
        right = t[i + 1:i + 1 + k]
        end = "" if len(right) == k else r"\Z"  # ... and a short right context must end both
        if right and t[i] != t[i - 1] and re.search(anchor + re.escape(left + right) + end, ref) \
                and not _occurs(t[a:i + 1 + k], ref, prompt) and not _formatting(t[i], left, right):
            found = ("inserted", t[i], a, i + 1 + k)
        else:  # dropped: the reference has one character between left and t[i:i+k]
            right = t[i:i + k]
            end = "" if len(right) == k else r"\Z"
            for m in re.finditer(anchor + re.escape(left) + r"(.)" + re.escape(right) + end, ref, flags=re.S):
                if m.group(1) != t[i - 1] and not _occurs(left + right, ref, prompt) \
                        and not _formatting(m.group(1), left, right):
                    found = ("dropped", m.group(1), a, i + k)
                    break
        if found and found[2] >= last_end:
            kind, ch, a, b = found
            out.append(Finding("shift-artifact", a, b, t[a:b], {"edit": kind, "char": ch, "at": i}))
            last_end = b
    return out


# ----------------------------------------------------------------------------------------- slack-leak
SLACK = "<slack>"


@detector("slack-leak")
def slack_leak(rec: dict[str, Any]) -> list[Finding]:
    """`<slack>` still in the scored text: the collapse map did not remove it (e.g. a sidecar without slack_id)."""
    t = text_of(rec)
    if SLACK in (rec.get("reference") or ""):
        return []
    return [Finding("slack-leak", m.start(), m.end(), SLACK, {"count": t.count(SLACK)})
            for m in re.finditer(re.escape(SLACK), t)][:1]


# ----------------------------------------------------------------------------------------- eos-truncation
EOS_MARKERS = ("<eos>", "<|endoftext|>", "<|eot_id|>", "<|im_end|>", "</s>", "<|end_of_text|>")
STRICT_ANSWER = re.compile(r"####\s*\$?\s*-?\d|[Tt]he (?:final )?answer is:?\s*\$?\s*-?\d")
ANY_ANSWER = re.compile(r"#+\s*\$?\s*-?\d|[Tt]he (?:final )?answer is:?\s*\$?\s*-?\d")  # "#" too: ctc merges "####"


def _first_eos(raw: str) -> tuple[int, str] | None:
    hits = [(raw.find(m), m) for m in EOS_MARKERS if m in raw]
    return min(hits) if hits else None


@detector("eos-truncation")
def eos_truncation(rec: dict[str, Any]) -> list[Finding]:
    """The answer missing because EOS came early: either the final answer was written after the first EOS
    (and so cut off), or the text stops at EOS unfinished, with no answer at all and no closing sentence."""
    raw = rec.get("raw_text")
    if not isinstance(raw, str) or (eos := _first_eos(raw)) is None:
        return []  # no EOS: if anything, the canvas ran out
    pos, marker = eos
    after = raw[pos + len(marker):]
    for m in EOS_MARKERS:
        after = after.replace(m, " ")
    after = " ".join(after.split())
    t = text_of(rec)
    n, a = len(t), max(0, len(t) - 12)
    if STRICT_ANSWER.search(after) and not STRICT_ANSWER.search(t):
        return [Finding("eos-truncation", a, n, t[a:], {"eos_at_char": pos, "after_eos": after[:80], "why": "answer after EOS"})]
    if ANY_ANSWER.search(t) or t.rstrip().endswith((".", "!", "?")):
        return []
    return [Finding("eos-truncation", a, n, t[a:], {"eos_at_char": pos, "after_eos": after[:80], "why": "cut unfinished"})]


# ----------------------------------------------------------------------------------------- eos-flood
@detector("eos-flood")
def eos_flood(rec: dict[str, Any]) -> list[Finding]:
    """Nothing to score: the output is empty after collapse, or only end-of-text tokens (the model closed the
    answer at once; the text is cut at the first EOS). The evidence is the whole (empty) text."""
    t = text_of(rec)
    rest = t
    for m in EOS_MARKERS:
        rest = rest.replace(m, "")
    if rest.strip():
        return []
    raw = rec.get("raw_text") if isinstance(rec.get("raw_text"), str) else ""
    return [Finding("eos-flood", 0, len(t), t, {"eos_markers": sum(raw.count(m) for m in EOS_MARKERS),
                                                "output_tokens": len(rec.get("output_ids") or [])})]


# ----------------------------------------------------------------------------------------- labelled cases
def load_labelled(folder: str | Path) -> list[dict[str, Any]]:
    """Hand-labelled cases from `folder`/*.jsonl: records with `label` {pattern: bool} and a `source`
    (a model output or "handwritten ..."); `id` defaults to `<file stem>:<line>`."""
    cases = []
    for f in sorted(Path(folder).glob("*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                case = json.loads(line)
                case.setdefault("id", f"{f.stem}:{n}")
                cases.append(case)
    return cases


def detector_quality(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per detector, over the cases labelled for it: pos, neg, real (not handwritten), tp, fp, fn, tn,
    precision, recall (nan when undefined) and the misses as (id, "missed" | "false alarm")."""
    out = {}
    for name, fn in DETECTORS.items():
        n = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
        real, misses = 0, []
        for c in cases:
            if name not in c.get("label", {}):
                continue
            want, got = bool(c["label"][name]), bool(fn(c))
            real += not str(c.get("source", "")).startswith("handwritten")
            n[("t" if want == got else "f") + ("p" if got else "n")] += 1
            if want != got:
                misses.append((c["id"], "missed" if want else "false alarm"))
        tp, fp, fn_ = n["tp"], n["fp"], n["fn"]
        out[name] = {"pos": tp + fn_, "neg": fp + n["tn"], "real": real, **n,
                     "precision": tp / (tp + fp) if tp + fp else float("nan"),
                     "recall": tp / (tp + fn_) if tp + fn_ else float("nan"), "misses": misses}
    return out


# ----------------------------------------------------------------------------------------- over a run
def resolve_patterns(pattern: str | None) -> list[str]:
    if pattern in (None, "", "all"):
        return list(DETECTORS)
    names = [p.strip() for p in pattern.split(",") if p.strip()]
    unknown = [p for p in names if p not in DETECTORS]
    if unknown:
        raise BadInput(f"unknown pattern {unknown[0]!r}; expected all or one of {', '.join(DETECTORS)}")
    return names


def mine_records(records: list[dict[str, Any]], patterns: list[str]) -> list[tuple[dict[str, Any], Finding]]:
    """(record, finding) for every finding of `patterns` over `records`."""
    return [(r, f) for r in records for f in mine(r, patterns)]


def is_wrong(rec: dict[str, Any]) -> bool:
    return rec.get("correct") is False or rec.get("verdict") in ("wrong", "no_answer", "failed", "error", "timeout", "memory")


def pattern_summary(records: list[dict[str, Any]], hits: list[tuple[dict[str, Any], Finding]],
                    patterns: list[str]) -> list[dict[str, Any]]:
    """Per pattern: records with >= 1 finding, findings, rate among all records and among the wrong ones.

    Reference-based patterns count only records that have a reference (`n` says how many)."""
    rows = []
    for p in patterns:
        pool = [r for r in records if p not in NEEDS_REFERENCE or has_reference(r)]
        ids = {record_key(r) for r, f in hits if f.pattern == p}
        wrong = [r for r in pool if is_wrong(r)]
        k = sum(record_key(r) in ids for r in pool)
        kw = sum(record_key(r) in ids for r in wrong)
        rows.append({"pattern": p, "n": len(pool), "n_wrong": len(wrong), "records": k,
                     "findings": sum(f.pattern == p for _, f in hits),
                     "rate": round(k / len(pool), 4) if pool else None,
                     "records_wrong": kw, "rate_wrong": round(kw / len(wrong), 4) if wrong else None})
    return rows


# ----------------------------------------------------------------------------------------- a run's files
ERRORS_FILE, ERRORS_SUMMARY = "errors.jsonl", "errors_summary.csv"
SUMMARY_FIELDS = ["run", "pattern", "n", "n_wrong", "records", "findings", "rate", "records_wrong", "rate_wrong"]


@dataclass
class MinedRun:
    """What `mine_run` wrote: the run, the records mined, this call's findings, the summary rows."""

    run: Any  # rundir.Run
    records: list[dict[str, Any]]
    hits: list[tuple[dict[str, Any], Finding]]  # findings of the patterns mined now
    rows: list[dict[str, Any]]  # errors_summary.csv rows ("run" is the run or run/checkpoint)


def finding_line(rec: dict[str, Any], f: Finding) -> dict[str, Any]:
    """One errors.jsonl line: a finding keyed by the record's (ckpt, id)."""
    return {"id": rec["id"], "ckpt": rec.get("ckpt"), "pattern": f.pattern, "start": f.start, "end": f.end,
            "evidence": f.evidence, "details": f.details, "correct": rec.get("correct"), "verdict": rec.get("verdict")}


def mine_run(run_dir: Path | str, patterns: list[str], *, only_wrong: bool = False) -> MinedRun:
    """Mine a run's records for `patterns`; writes errors.jsonl and errors_summary.csv in the run.

    Only the mined patterns' findings are replaced: findings of other patterns already in errors.jsonl
    (for the records mined now) are kept, and the summary covers every pattern errors.jsonl holds or the
    previous summary listed, so the two files always agree. A shift run holding several checkpoints gets
    one summary row set per checkpoint. Records without a reference skip the patterns that need one (a
    warning); when no record has one and every pattern needs it, that is bad input."""
    run = load_run(run_dir, need_records=True)
    recs = [r for r in run.records if is_wrong(r)] if only_wrong else run.records
    no_ref = sum(not has_reference(r) for r in recs)
    if no_ref:
        ref_pats = [p for p in patterns if p in NEEDS_REFERENCE]
        if no_ref == len(recs) and len(ref_pats) == len(patterns):
            raise BadInput(f"{run_dir}: no record has a reference, and {', '.join(patterns)} need(s) one")
        if ref_pats:
            warnings.warn(f"{run_dir}: {no_ref} record(s) without a reference; {', '.join(ref_pats)} skip them",
                          stacklevel=2)
    hits = mine_records(recs, patterns)
    keys = {record_key(r) for r in recs}
    kept = [e for e in run.errors if e.get("pattern") in DETECTORS and e.get("pattern") not in patterns
            and (e.get("ckpt"), e.get("id")) in keys]
    before, _ = read_csv_patterns(run.dir / ERRORS_SUMMARY)
    mined = set(patterns) | {e["pattern"] for e in kept} | {p for p in before if p in DETECTORS}
    order = [p for p in DETECTORS if p in mined]
    # Every finding, new and kept, per record in record order and per pattern in registry order (mining all
    # patterns at once gives exactly this order).
    by_key: dict[tuple, dict[str, list[Finding]]] = {}
    for r, f in hits:
        by_key.setdefault(record_key(r), {}).setdefault(f.pattern, []).append(f)
    for e in kept:
        f = Finding(e["pattern"], e.get("start", 0), e.get("end", 0), e.get("evidence", ""), e.get("details") or {})
        by_key.setdefault((e.get("ckpt"), e.get("id")), {}).setdefault(f.pattern, []).append(f)
    every = [(r, f) for r in recs for p in order for f in by_key.get(record_key(r), {}).get(p, [])]
    with open(run.dir / ERRORS_FILE, "w", encoding="utf-8") as fh:
        for r, f in every:
            fh.write(json.dumps(finding_line(r, f), ensure_ascii=False) + "\n")
    ckpts = sorted({str(r.get("ckpt")) for r in recs})
    groups = [(run.name, recs, every)] if len(ckpts) <= 1 else [
        (f"{run.name}/{c}", [r for r in recs if str(r.get("ckpt")) == c],
         [(r, f) for r, f in every if str(r.get("ckpt")) == c]) for c in ckpts]
    rows = [{"run": label, **row} for label, g_recs, g_hits in groups
            for row in pattern_summary(g_recs, g_hits, order)]
    with open(run.dir / ERRORS_SUMMARY, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return MinedRun(run=run, records=recs, hits=hits, rows=rows)


def read_csv_patterns(path: Path) -> tuple[list[str], int]:
    """The patterns an errors_summary.csv lists (in order), and its row count; nothing when absent or unreadable."""
    if not path.is_file():
        return [], 0
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return [], 0
    return list(dict.fromkeys(r.get("pattern") or "" for r in rows)), len(rows)
