"""`gsm8k`: grade-school math word problems (Cobbe et al. 2021), test split, lm-eval's prompt format.

Data: `--data-file` of the original jsonl (`question`, `answer` ending in `#### N`), else `gsm8k/test.jsonl`
under the data directory (`--data-dir`, MDLM_PROBE_DATA), else the Hub's `openai/gsm8k` (main, test). Few-shot examples come from the train split: a
`train.jsonl` beside the data file, else the Hub. The prompt is lm-eval's `gsm8k` task:
"Question: ...\nAnswer: <worked solution ending in #### N>" per example, joined by blank lines, then
"Question: <q>\nAnswer:". The examples are the same for every question: drawn once with seed 1234
(lm-eval's few-shot seed), so a prompt never depends on which other questions are evaluated.

Reference protocols (a preset's `prompt_format`; gsm8k, mbpp and humaneval each have `protocol_prompt`):
lm-eval 0.4.8's gsm8k with its per-process few-shot stream (`lmeval_shots`), Fast-dLLM's one-user-turn
context, OpenCompass's 4 fixed chat-turn examples, lm-eval's gsm8k_cot (8 fixed exemplars) and Dream's fork.
A chat prompt is {"messages", "add_generation_prompt", "continue_final_message"} (`chat`); fixed examples
live in tasks/presets/shots/ with their sources. tests/tasks/test_protocol_goldens.py checks them byte for
byte against prompts the reference code built.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import iter_jsonl
from mdlm_probe.tasks.scoring import cut_at_stops, score_math
from . import Benchmark, Sample, register

HUB = ("openai/gsm8k", "main")
FEWSHOT_SEED = 1234
STOPS = ("Question:", "</s>", "<|im_end|>")  # lm-eval's `until` for gsm8k
SHOTS_DIR = Path(__file__).resolve().parents[1] / "presets" / "shots"  # fixed few-shot examples of references
OC_SUFFIX = "\nLet's think step by step\nAnswer:"  # OpenCompass gsm8k_gen_1d7fe4.py:22


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

    # ---------------------------------------------------------------- reference protocols (a preset's prompt_format)
    prompt_formats = ("lm-eval:gsm8k", "fast-dllm:gsm8k", "opencompass:gsm8k_gen_1d7fe4", "lm-eval:gsm8k_cot",
                      "dream-fork:gsm8k_cot")

    def lmeval_shots(self, doc: int, k: int, world_size: int = 1) -> list[dict]:
        """lm-eval 0.4.8's random sampler: one Random(1234) per task, advanced once per document in the
        order a process sees them; documents are dealt round-robin to `world_size` processes, so document
        `doc` gets draw doc // world_size (api/samplers.py:189, api/task.py:664-667, utils.py:510-516)."""
        draws = self.__dict__.setdefault("_draws", {}).setdefault(k, [])
        if not draws:
            self.__dict__.setdefault("_rnd", {})[k] = random.Random(FEWSHOT_SEED)
        rnd, pool = self._rnd[k], self.fewshot_pool()
        while len(draws) <= doc // world_size:
            draws.append(rnd.sample(pool, k))
        return draws[doc // world_size]

    def protocol_prompt(self, sample: Sample, fmt: str, num_fewshot: int, world_size: int = 1) -> str | dict:
        """The prompt a reference pipeline builds: text, or {"messages", "add_generation_prompt"} for chat."""
        if fmt in ("lm-eval:gsm8k", "fast-dllm:gsm8k"):
            shots = self.lmeval_shots(int(sample.native_id), num_fewshot, world_size) if num_fewshot else []
            text = "\n\n".join([f"Question: {r['question']}\nAnswer: {r['answer']}" for r in shots]
                                + [f"Question: {sample.question}\nAnswer:"])
            # Fast-dLLM's eval_llada.py puts lm-eval's whole context in one user turn
            return text if fmt == "lm-eval:gsm8k" else chat([("user", text)])
        if fmt == "opencompass:gsm8k_gen_1d7fe4":
            turns = [t for r in _shots("opencompass-gsm8k")[:num_fewshot]
                     for t in (("user", r["question"]), ("assistant", r["answer"]))]
            return chat(turns + [("user", f"Question: {sample.question}{OC_SUFFIX}")])
        if fmt in ("lm-eval:gsm8k_cot", "dream-fork:gsm8k_cot"):
            shots = [f"Q: {r['question']}\nA: {r['answer']}" for r in _shots("lmeval-gsm8k-cot")[:num_fewshot]]
            text = "\n\n".join(shots + [f"Q: {sample.question}\nA:"])
            return text if fmt == "lm-eval:gsm8k_cot" else chat([("user", text)])
        raise BadInput(f"gsm8k has no prompt format {fmt!r}; expected one of {', '.join(self.prompt_formats)}")


def render_llada_chat(prompt: dict) -> str:
    """LLaDA-8B-Instruct's chat template (Llama-3 layout, bos <|startoftext|>; read from a copy of its
    tokenizer_config.json): each message trimmed in its header/eot frame, then always an assistant header."""
    body = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
                   for m in prompt["messages"])
    return "<|startoftext|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _shots(name: str) -> list[dict]:
    """Fixed few-shot examples a reference config ships (tasks/presets/shots/NAME.json, with its source)."""
    return json.loads((SHOTS_DIR / f"{name}.json").read_text(encoding="utf-8"))["shots"]


def chat(turns: list[tuple[str, str]], prefill: bool = False) -> dict:
    """A chat prompt: messages, and whether the template opens a new assistant turn (or continues the
    last, prefilled, assistant message: lm-eval's gen_prefix, Dream's diffllm.py:246-259)."""
    return {"messages": [{"role": r, "content": c} for r, c in turns],
            "add_generation_prompt": not prefill, "continue_final_message": prefill}
