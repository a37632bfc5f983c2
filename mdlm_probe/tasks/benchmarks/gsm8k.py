"""`gsm8k`: grade-school math word problems (Cobbe et al. 2021), test split, lm-eval's prompt format.

Data: `--data-file` of the original jsonl (`question`, `answer` ending in `#### N`), else `gsm8k/test.jsonl`
under the data directory (`--data-dir`, MDLM_PROBE_DATA), else the Hub's `openai/gsm8k` (main, test). Few-shot examples come from the train split: a
`train.jsonl` beside the data file, else the Hub. The prompt is lm-eval's `gsm8k` task:
"Question: ...\nAnswer: <worked solution ending in #### N>" per example, joined by blank lines, then
"Question: <q>\nAnswer:". The examples are the same for every question: drawn once with seed 1234
(lm-eval's few-shot seed), so a prompt never depends on which other questions are evaluated.
"""

from __future__ import annotations

import random
from pathlib import Path

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import iter_jsonl
from mdlm_probe.tasks.scoring import cut_at_stops, score_math
from . import Benchmark, Sample, register

HUB = ("openai/gsm8k", "main")
FEWSHOT_SEED = 1234
STOPS = ("Question:", "</s>", "<|im_end|>")  # lm-eval's `until` for gsm8k


def final_answer(solution: str) -> str | None:
    """'... #### 1,200' -> '1,200'; None when the solution has no `####` line."""
    if "####" not in solution:
        return None
    ans = solution.rsplit("####", 1)[1].strip()
    return ans or None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, obj in iter_jsonl(path, "data file", " (expected GSM8K jsonl with 'question' and 'answer')"):
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) \
                or not isinstance(obj.get("answer"), str):
            raise BadInput(f"{path}:{n}: no 'question' and 'answer' strings")
        if final_answer(obj["answer"]) is None:
            raise BadInput(f"{path}:{n}: the answer has no final '#### N' line")
        rows.append(obj)
    if not rows:
        raise BadInput(f"{path} holds no GSM8K problems")
    return rows


def _to_samples(rows: list[dict]) -> list[Sample]:
    return [Sample(native_id=str(i), question=r["question"], reference=r["answer"],
                   reference_answer=final_answer(r["answer"])) for i, r in enumerate(rows)]


@register("gsm8k")
class GSM8K(Benchmark):
    default_fewshot = 5
    stops = STOPS
    local_files = ("gsm8k/test.jsonl",)

    def _hub_split(self, split: str) -> list[dict]:
        return [dict(r) for r in self.hub_dataset(*HUB, split=split, data_file="test.jsonl")]

    def load(self) -> list[Sample]:
        rows = read_jsonl(self.data_file) if self.data_file else self._hub_split("test")
        return _to_samples(rows)

    def data_source(self) -> str:
        return str(self.data_file) if self.data_file else f"hub:{HUB[0]}/{HUB[1]}/test"

    def fewshot_pool(self) -> list[dict]:
        if getattr(self, "_pool", None) is None:
            if self.data_file:
                train = self.data_file.with_name("train.jsonl")
                if not train.is_file() or train.resolve() == self.data_file.resolve():
                    raise BadInput(f"few-shot examples need {train} beside the data file; pass --num-fewshot 0")
                self._pool = read_jsonl(train)
            else:
                self._pool = self._hub_split("train")
        return self._pool

    def fewshot(self, k: int) -> list[dict]:
        cache = self.__dict__.setdefault("_shots", {})
        if k not in cache:
            pool = self.fewshot_pool()
            if k > len(pool):
                raise BadInput(f"--num-fewshot {k} exceeds the {len(pool)} training examples")
            cache[k] = random.Random(FEWSHOT_SEED).sample(pool, k)
        return cache[k]

    def prompt(self, sample: Sample, num_fewshot: int = 0) -> str:
        shots = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in self.fewshot(num_fewshot)] \
            if num_fewshot > 0 else []
        return "\n\n".join(shots + [f"Question: {sample.question}\nAnswer:"])

    def score(self, text: str, sample: Sample) -> dict:
        return score_math(cut_at_stops(text, self.stops), sample.reference_answer)
