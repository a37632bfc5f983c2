"""The dynamics of one sample record: commit order, EOS, numbers, wrong tokens, artifact origins.

Definitions (docs/dynamics.md has them for users):
- order: `order.py` (tau-b of commit step against position; per-step parallelism; share before content).
- steps: the decode's steps = the last commit step + 1; "fraction" values divide a step by that.
- length fixed: the step after which the first EOS could no longer move: the first EOS is committed and every
  position before it holds a committed non-EOS token, i.e. max(commit_step[0..e]); no EOS: the last commit.
- eos_before_answer: the first EOS was committed before the first digit of the final answer.
- premature termination: an EOS ended the text (a) before a marked final answer, though the reference has one,
  or (b) inside the answer: the final answer is a strict prefix of the reference answer's digits and the EOS
  follows it directly (only slack in between).
- numbers: each number in the text; its digits' commit steps; trailing zeros (after the last non-zero digit)
  committed before the leading digit; all digits in one step; confidence at commit; flagged by the
  trailing-zero miner.
- wrong tokens: (a) the final answer's digits against the reference answer's, left-aligned (a digit is wrong
  if it differs or lies past the reference's end); (b) synthetic only, where the reference is the expected
  output itself: characters outside the equal blocks of a character diff of text against reference.
"""

from __future__ import annotations

import difflib
from typing import Any

from mdlm_probe.runs import miners

from .align import CanvasMap, Vocab, canvas_map
from .order import parallelism, share_before, tau_order, tau_within_blocks

ARTIFACTS = ("repeated-token", "misplaced-char", "shift-artifact", "trailing-zero")
WINDOW = 2  # neighbours either side of an artifact's pair that count as its neighbourhood


def unperturbed(rec: dict[str, Any]) -> bool:
    return not rec.get("intervention") or str(rec.get("id", "")).endswith("@clean")


def analyse_record(rec: dict[str, Any], vocab: Vocab | None) -> dict[str, Any]:
    """One line of dynamics.jsonl (see the module docstring for every definition)."""
    traj = rec.get("trajectory") or {}
    steps = [int(s) for s in traj.get("commit_step") or []]
    conf = [float(c) for c in traj.get("confidence") or []]
    blocks = [int(b) for b in traj.get("block") or [-1] * len(steps)]
    n_steps = max(steps) + 1 if steps and max(steps) >= 0 else 0
    mean_par, max_par = parallelism(steps)
    out: dict[str, Any] = {
        "id": rec.get("id"), "ckpt": rec.get("ckpt"), "correct": rec.get("correct"),
        "steps": n_steps, "tau_b": _r(tau_order(steps)), "tau_b_within_block": _r(tau_within_blocks(steps, blocks)),
        "parallel_mean": _r(mean_par), "parallel_max": max_par,
    }
    if isinstance(rec.get("hook_info"), dict) and "cache_drift" in rec["hook_info"]:
        d = rec["hook_info"]["cache_drift"]
        out["drift"] = {k: d.get(k) for k in ("kl_mean", "kl_max", "top1_agree", "committed_differ", "steps")}
    text = rec.get("text") or ""
    cm = canvas_map(rec.get("output_ids") or [], text, rec.get("collapse") or "surface", vocab) if vocab else None
    out["aligned"] = bool(cm and cm.aligned)
    if cm is None or not cm.aligned:
        return out
    out["tau_b_content"] = _r(tau_order(steps, cm.content))
    out["share_before_content"] = _r(share_before(steps, cm.content))
    out.update(eos_dynamics(rec, steps, cm, vocab, n_steps))
    out["numbers"] = number_dynamics(rec, steps, conf, cm)
    ans = next((n for n in out["numbers"] if n["final_answer"]), None)
    out["answer_tz_before_lead"] = ans["tz_before_lead"] if ans and ans["trailing_zeros"] else None
    out["answer_same_step"] = ans["same_step"] if ans and len(ans["steps"]) > 1 else None
    out["answer_min_conf"] = ans["min_conf"] if ans else None
    content_conf = [conf[p] for p in cm.content if steps[p] >= 0]
    out["min_conf"] = _r(min(content_conf)) if content_conf else None
    out["mean_conf"] = _r(sum(content_conf) / len(content_conf)) if content_conf else None
    out["tokens"] = wrong_tokens(rec, text, steps, conf, cm)
    out["origins"] = origins(rec, steps, cm) if unperturbed(rec) else []
    return out


def _r(x: float | None, nd: int = 5) -> float | None:
    return None if x is None else round(float(x), nd)


# ----------------------------------------------------------------------------------------- EOS
def eos_dynamics(rec, steps, cm: CanvasMap, vocab: Vocab, n_steps: int) -> dict[str, Any]:
    ids = rec.get("output_ids") or []
    e = cm.first_eos
    fixed = max(steps[:e + 1]) if e is not None else (max(steps) if steps else None)
    eos_steps = [s for t, s in zip(ids, steps) if t in vocab.eos_ids and s >= 0]
    ans = miners.final_answer(rec)
    ans_steps = [steps[p] for c in range(*ans[1:]) for p in cm.chars[c]] if ans else []
    before = (steps[e] < min(ans_steps)) if (e is not None and ans_steps and steps[e] >= 0) else None
    return {
        "final_length": e if e is not None else len(ids),
        "length_fixed_step": fixed,
        "length_fixed_frac": _r(fixed / max(1, n_steps - 1)) if fixed is not None and n_steps else None,
        "eos_commit_step": steps[e] if e is not None else None,
        "eos_steps": eos_steps,  # the step of every EOS token the model committed
        "eos_density": eos_density(ids, steps, vocab, n_steps),
        "eos_before_answer": before,
        "premature": premature(rec, ids, cm, vocab, ans),
    }


DECILES = 10


def eos_density(ids, steps, vocab: Vocab, n_steps: int) -> list[float | None]:
    """Per tenth of the decode's steps: the share of the tokens committed in it that are EOS (None: no commit)."""
    eos, tot = [0] * DECILES, [0] * DECILES
    for t, s in zip(ids, steps):
        if s >= 0 and n_steps:
            d = min(DECILES - 1, s * DECILES // n_steps)
            tot[d] += 1
            eos[d] += t in vocab.eos_ids
    return [_r(e / n) if n else None for e, n in zip(eos, tot)]


def premature(rec, ids, cm: CanvasMap, vocab: Vocab, ans) -> bool | None:
    """None without an EOS or a reference answer; else (a) or (b) of the module docstring."""
    ref = miners.reference_answer(rec)
    if cm.first_eos is None or ref is None:
        return None if cm.first_eos is None else False
    if ans is None:
        return True  # (a) ended before a marked answer
    v, a, b = ans
    if v != ref and ref.startswith(v):
        gap = ids[cm.last(b - 1) + 1:cm.first_eos]
        return all(t == vocab.slack_id for t in gap)  # (b) the EOS cut the answer's digits
    return False


# ----------------------------------------------------------------------------------------- numbers
def number_dynamics(rec, steps, conf, cm: CanvasMap) -> list[dict[str, Any]]:
    text = rec.get("text") or ""
    flagged = [(f.start, f.end) for f in miners.DETECTORS["trailing-zero"](rec)] if miners.has_reference(rec) else []
    ans = miners.final_answer(rec)
    out = []
    for value, a, b in miners.numbers(text):
        digits = [c for c in range(a, b) if text[c].isdigit()]
        st = [steps[cm.first(c)] for c in digits]
        cf = [conf[cm.first(c)] for c in digits]
        body = text[a:b].replace(",", "")
        last_nz = max((i for i, ch in enumerate(body) if ch not in "0."), default=-1)
        tz = [st[i] for i in range(last_nz + 1, len(st))] if "." not in body and last_nz >= 0 else []
        out.append({
            "value": value, "start": a, "end": b, "steps": st,
            "final_answer": bool(ans and (a, b) == tuple(ans[1:])),
            "trailing_zeros": len(tz),
            "tz_before_lead": bool(tz) and min(tz) < st[0],
            "same_step": len(set(st)) == 1,
            "left_to_right": all(x <= y for x, y in zip(st, st[1:])),
            "min_conf": _r(min(cf)) if cf else None,
            "mean_conf": _r(sum(cf) / len(cf)) if cf else None,
            "miner_flagged": any(a < fb and fa < b for fa, fb in flagged),
        })
    return out


# ----------------------------------------------------------------------------------------- wrong tokens
def wrong_tokens(rec, text, steps, conf, cm: CanvasMap) -> dict[str, Any]:
    """Confidences at commit of right and wrong characters, by the two definitions of the module docstring."""
    res: dict[str, Any] = {}
    ans, ref = miners.final_answer(rec), miners.reference_answer(rec)
    if ans and ref:
        digits = [c for c in range(ans[1], ans[2]) if text[c].isdigit()]
        right, wrong = [], []
        for k, c in enumerate(digits):
            (right if k < len(ref) and text[c] == ref[k] else wrong).append(conf[cm.first(c)])
        res["answer"] = {"right": [_r(x) for x in right], "wrong": [_r(x) for x in wrong]}
    if rec.get("benchmark") == "synthetic" and isinstance(rec.get("reference"), str):
        sm = difflib.SequenceMatcher(None, text, rec["reference"], autojunk=False)
        ok = set()
        for blk in sm.get_matching_blocks():
            ok.update(range(blk.a, blk.a + blk.size))
        chars = [c for c in range(len(text)) if not text[c].isspace() and steps[cm.first(c)] >= 0]
        res["text"] = {"right": [_r(conf[cm.first(c)]) for c in chars if c in ok],
                       "wrong": [_r(conf[cm.first(c)]) for c in chars if c not in ok]}
    return res


# ----------------------------------------------------------------------------------------- artifact origins
def artifact_pair(f: miners.Finding, text: str) -> tuple[int, int] | None:
    """The two adjacent characters of `text` at which a miner's artifact sits (see docs/dynamics.md)."""
    d = f.details
    if f.pattern == "shift-artifact":
        i = int(d.get("at", f.start))
        return (i - 1, i) if i >= 1 else None
    if f.pattern == "repeated-token":
        if "run" in d:
            return (f.start, f.start + 1)
        n = int(d.get("n", 1))
        units = miners._units(text[f.start:f.end])
        if len(units) < 2 * n:
            return None
        return (f.start + units[n - 1][2] - 1, f.start + units[n][1])
    if f.pattern == "misplaced-char":
        w, r = f.evidence, str(d.get("reference_word", ""))
        j = next((k for k in range(min(len(w), len(r))) if w[k] != r[k]), None)
        return (f.start + j, f.start + j + 1) if j is not None and j + 1 < len(w) else None
    if f.pattern == "trailing-zero":
        return (f.end - 2, f.end - 1) if f.end - f.start >= 2 else None
    return None


def origins(rec, steps, cm: CanvasMap) -> list[dict[str, Any]]:
    """Each artifact: same-step (both tokens of its pair committed in one step) or cross-step, and whether a
    neighbour within WINDOW positions was still masked when the later of the two committed."""
    if not miners.has_reference(rec):
        return []
    text = rec.get("text") or ""
    out = []
    for f in miners.mine(rec, ARTIFACTS):
        pair = artifact_pair(f, text)
        if pair is None or not (0 <= pair[0] < pair[1] < len(text)):
            continue
        p, q = cm.last(pair[0]), cm.first(pair[1])
        if f.pattern == "trailing-zero" and len(cm.chars[pair[1]]) > 1:  # a merged run "0 0" -> "0": the merge
            p, q = cm.chars[pair[1]][0], cm.chars[pair[1]][1]
        sp, sq = steps[p], steps[q]
        if sp < 0 or sq < 0:
            continue
        later = max(sp, sq)
        lo, hi = min(p, q) - WINDOW, max(p, q) + WINDOW
        near = [k for k in range(max(0, lo), min(len(steps), hi + 1)) if k not in (p, q)]
        out.append({"pattern": f.pattern, "start": f.start, "end": f.end, "positions": [p, q], "steps": [sp, sq],
                    "origin": "same-step" if sp == sq else "cross-step",
                    "masked_neighbourhood": any(steps[k] >= later for k in near)})
    return out
