"""Pairwise judging of clean vs shifted outputs by an OpenAI-compatible chat endpoint (e.g. `vllm serve`).

Each pair is judged twice, in both orders, to cancel position bias; the shifted output scores 1 for a
win, 0.5 for a tie, 0 for a loss, averaged over the two orders. Anything other than a clean verdict
(server down, HTTP error, malformed JSON, an answer without exactly one of [[A]] / [[B]] / [[C]]) is
recorded as `judge_error` with no score: never a crash, never an invented verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import RecordWriter, read_records
from mdlm_probe.core.rundir import SHIFT
from mdlm_probe.tasks.chat_http import chat_endpoint, post_chat

SYSTEM = ("You are an impartial judge. Compare two responses to the same prompt and decide which is better: "
          "more correct, coherent and complete. Reply with exactly one verdict: [[A]] if response A is better, "
          "[[B]] if response B is better, [[C]] for a tie.")
USER = "[Prompt]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\nVerdict:"
VERDICT = re.compile(r"\[\[\s*(A|B|C)\s*\]\]", re.IGNORECASE)
JUDGE_FILE = "judge.jsonl"


@dataclass
class Judge:
    url: str
    model: str
    timeout: float = 60.0
    max_tokens: int = 512
    api_key: str | None = None

    def __post_init__(self) -> None:
        self.endpoint = chat_endpoint(self.url)
        if not self.model:
            raise BadInput("--judge-url needs --judge-model (the model name the server serves)")

    def ask(self, prompt: str, a: str, b: str) -> tuple[str | None, str | None]:
        """One judgement: ('A' | 'B' | 'C', None) or (None, error)."""
        body = {"model": self.model, "temperature": 0.0, "max_tokens": self.max_tokens,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": USER.format(prompt=prompt, a=a, b=b)}]}
        reply = post_chat(self.endpoint, body, self.timeout, self.api_key)
        if reply.content is None:  # this judge names the endpoint in an HTTP error too
            return None, reply.error + (f" from {self.endpoint}" if reply.status is not None else "")
        content = reply.content
        found = {m.upper() for m in VERDICT.findall(content)}
        if len(found) != 1:
            return None, f"unparseable verdict: {content[:80]!r}"
        return found.pop(), None

    def compare(self, prompt: str, clean: str, shifted: str) -> dict[str, Any]:
        """Both orders -> {'verdicts', 'score' (shifted vs clean) or None, 'judge_error' or None}."""
        if clean == shifted:  # identical texts: a tie without asking (and said so)
            return {"verdicts": ["C", "C"], "score": 0.5, "judge_error": None, "identical": True}
        v1, e1 = self.ask(prompt, clean, shifted)  # shifted is B
        v2, e2 = self.ask(prompt, shifted, clean)  # shifted is A
        if e1 or e2:
            return {"verdicts": [v1, v2], "score": None, "judge_error": e1 or e2, "identical": False}
        s1 = {"B": 1.0, "C": 0.5, "A": 0.0}[v1]
        s2 = {"A": 1.0, "C": 0.5, "B": 0.0}[v2]
        return {"verdicts": [v1, v2], "score": (s1 + s2) / 2, "judge_error": None, "identical": False}


def judge_run(out_dir: Path | str, judge: Judge, log: Callable[[str], None] = lambda s: None) -> dict[tuple, dict]:
    """Judge every shifted record of a run against its clean twin; appends to judge.jsonl.

    Pairs already judged successfully are skipped; those that failed are retried (the last line wins).
    Returns {(ckpt, id): judgement} for the summary.
    """
    out_dir = Path(out_dir)
    recs = read_records(out_dir / SHIFT)[0]
    clean = {(r["ckpt"], r["id"]): r for r in recs if r["id"].endswith("@clean")}
    judged = {(j["ckpt"], j["id"]): j for j in read_records(out_dir / JUDGE_FILE)[0]}
    errors = 0
    with RecordWriter(out_dir / JUDGE_FILE) as w:
        for r in recs:
            iv, key = r.get("intervention"), (r["ckpt"], r["id"])
            if not iv or (key in judged and judged[key].get("score") is not None):
                continue
            c = clean.get((r["ckpt"], iv["clean_id"]))
            if c is None:
                continue
            j = {"id": r["id"], "ckpt": r["ckpt"], "clean_id": iv["clean_id"], "judge_model": judge.model,
                 **judge.compare(r["prompt"], c["text"], r["text"])}
            w.write(j)
            judged[key] = j
            errors += bool(j["judge_error"])
    if errors:
        log(f"judge: {errors} pairs without a verdict (judge_error recorded; a rerun retries them)")
    return judged


def read_judged(out_dir: Path | str) -> dict[tuple, dict] | None:
    p = Path(out_dir) / JUDGE_FILE
    if not p.is_file():
        return None
    return {(j["ckpt"], j["id"]): j for j in read_records(p)[0]}
