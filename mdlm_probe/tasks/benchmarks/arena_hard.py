"""`arena-hard`: open-ended questions in Arena-Hard-Auto's `question.jsonl` format, answered with the chat
template and judged later (`mdlm-probe judge`), never at eval time: records have `correct` = None.

Data: `--data-file` of any question file in that format (Arena-Hard v0.1 or v2.0, or e.g. MT-Bench's first
turns), else `arena-hard/question.jsonl` under the data directory. There is no Hub fallback. Two layouts are
read (docs/arena_hard.md): main's (`uid`, `prompt`) and the legacy one (`question_id`, `turns[0].content`);
`category`, `cluster` and `subcategory` are kept in the sample's meta. Only the first turn is asked.

`export_answers` writes the answers in Arena-Hard-Auto's `model_answer/<model>.jsonl` format, with the keys of
both its versions in every line (main reads `uid` and `messages`, legacy `question_id` and `choices`), so
either version's own tools can read them.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterable

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import iter_jsonl
from . import Benchmark, Sample, register

ANSWER_DIR = "model_answer"
FORMAT_HINT = "expected Arena-Hard question.jsonl lines with 'uid' (or 'question_id') and 'prompt' (or 'turns')"


def question_fields(obj: Any) -> tuple[str, str] | None:
    """(id, first-turn prompt) of one question.jsonl object in either layout, or None."""
    if not isinstance(obj, dict):
        return None
    qid = obj.get("uid", obj.get("question_id"))
    prompt = obj.get("prompt")
    if prompt is None and isinstance(obj.get("turns"), list) and obj["turns"]:
        first = obj["turns"][0]
        prompt = first.get("content") if isinstance(first, dict) else first
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or not isinstance(prompt, str) or not prompt:
        return None
    return str(qid), prompt


def read_questions(path: Path) -> list[Sample]:
    """Samples from a question.jsonl; anything else is one BadInput line naming the file and line."""
    samples, seen = [], set()
    for n, obj in iter_jsonl(path, "question file", f" ({FORMAT_HINT})"):
        got = question_fields(obj)
        if got is None:
            raise BadInput(f"{path}:{n}: {FORMAT_HINT}")
        qid, prompt = got
        if qid in seen:
            raise BadInput(f"{path}:{n}: question id {qid!r} appears twice")
        seen.add(qid)
        meta = {k: obj[k] for k in ("category", "cluster", "subcategory") if k in obj}
        samples.append(Sample(native_id=qid, question=prompt, reference="", reference_answer=None, meta=meta))
    if not samples:
        raise BadInput(f"{path} holds no questions ({FORMAT_HINT})")
    return samples


@register("arena-hard")
class ArenaHard(Benchmark):
    kind = "open"
    local_files = ("arena-hard/question.jsonl",)

    def load(self) -> list[Sample]:
        if self.data_file is None:
            raise BadInput("arena-hard needs its questions: pass --data-file PATH/question.jsonl (Arena-Hard-Auto's "
                           "data/arena-hard-v0.1/question.jsonl), or --data-dir DIR holding arena-hard/question.jsonl")
        return read_questions(self.data_file)

    def prompt(self, sample: Sample, num_fewshot: int = 0) -> str:
        if num_fewshot:
            raise BadInput(f"--num-fewshot {num_fewshot}: arena-hard has no few-shot examples (use 0)")
        return sample.question

    def score(self, text: str, sample: Sample) -> dict[str, Any]:
        # Open-ended: nothing to score here; a judge compares answers later. The question is kept in the
        # record so a run directory is all `mdlm-probe judge` needs.
        return {"extracted": None, "correct": None, "verdict": None, "scores": {},
                "question": sample.question, "question_meta": sample.meta or None}

    def export_answers(self, out: Path, model: str, records: Iterable[dict[str, Any]]) -> Path:
        """Write `out/model_answer/<model>.jsonl` (sorted by id, one line per question)."""
        return write_model_answers(Path(out) / ANSWER_DIR / f"{safe_name(model)}.jsonl", model, records)


def safe_name(model: str) -> str:
    """A model name usable as a file name (Arena-Hard takes the model name from the file name)."""
    return re.sub(r"[^A-Za-z0-9._@+=-]+", "_", model).strip("_") or "model"


def native_id(rec_id: str) -> str:
    """'arena-hard/abc@clean' -> 'abc'."""
    return rec_id.split("/", 1)[-1].split("@", 1)[0]


# Markdown counts as Arena-Hard-Auto's add_markdown_info computes them (fenced code contents removed first).
_CODE = re.compile(r"```([^`]*)```")


def markdown_counts(text: str) -> dict[str, Any]:
    t = _CODE.sub("``````", text)
    return {"header_count": {f"h{k}": len(re.findall(rf"^#{{{k}}}\s", t, re.MULTILINE)) for k in range(1, 7)},
            "list_count": {"ordered": len(re.findall(r"^\s*\d+\.\s", t, re.MULTILINE)),
                           "unordered": len(re.findall(r"^\s*[-*+]\s", t, re.MULTILINE))},
            "bold_count": {"**": len(re.findall(r"\*\*[^*\n]+\*\*", t)), "__": len(re.findall(r"__[^_\n]+__", t))}}


def write_model_answers(path: Path, model: str, records: Iterable[dict[str, Any]]) -> Path:
    """One line per question in both Arena-Hard-Auto layouts. token_len is the count of the model's own
    output tokens (Arena-Hard counts tiktoken tokens; only its style control reads it)."""
    rows = {}
    for r in records:
        qid, text = native_id(r["id"]), r.get("text") or ""
        meta = {"token_len": len(r.get("output_ids") or []), **markdown_counts(text)}
        rows[qid] = {"uid": qid, "question_id": qid, "ans_id": f"{model}:{qid}", "answer_id": f"{model}:{qid}",
                     "model": model, "model_id": model,
                     "messages": [{"role": "user", "content": r.get("question") or ""},
                                  {"role": "assistant", "content": {"answer": text}}],
                     "choices": [{"index": 0, "turns": [{"content": text, "token_len": meta["token_len"]}]}],
                     "tstamp": time.time(), "metadata": meta, "conv_metadata": meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(rows[k], ensure_ascii=False) + "\n" for k in sorted(rows)), encoding="utf-8")
    tmp.replace(path)
    return path
