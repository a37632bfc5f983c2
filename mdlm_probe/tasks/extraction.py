"""Reference pipelines' stop rules and answer extraction, by name (a preset's `stop_rule` and `extraction`).

Each rule reproduces what one reference pipeline does to a model's text, so a preset's extracted answers
equal the ones its published score was computed from (tests/tasks/test_protocol_goldens.py checks them
against the reference code's outputs). Sources (line numbers at the pinned commits; docs/presets in README):

- lm-eval 0.4.8 (EleutherAI/lm-evaluation-harness v0.4.8): RegexFilter (filters/extraction.py) with the
  gsm8k.yaml / gsm8k-cot.yaml regexes, `take_first`; fallback "[invalid]".
- OpenCompass (the copy in ML-GSAI/LLaDA@b7e6c35): gsm8k_postprocess (datasets/gsm8k.py:43-49),
  MBPPEvaluator._process_answer (datasets/mbpp.py:309-349), humaneval_postprocess_v2 (datasets/humaneval.py:182-186),
  GPQA_Simple_Eval_postprocess_ (configs/datasets/gpqa/gpqa_fewshot_gen.py:165-172).
- Fast-dLLM (NVlabs/Fast-dLLM@24cc59e llada/postprocess_code.py:48), Dream-Base (DreamLM/Dream@fac0a7f
  eval/postprocess_code.py:31) and Dream's lm-eval fork (eval_instruct/lm_eval/tasks/humaneval/utils.py:40-52,
  build_predictions_instruct): prompt + first python block, `sanitize`d (tasks/code_sanitize.py).
- Stop rules: LLaDA/Fast-dLLM eval_llada.py (split at each stop string in turn, then drop special tokens),
  Dream eval.py / diffllm.py (keep what precedes the eos text, then split at each stop string).
"""

from __future__ import annotations

import re
from typing import Callable

from mdlm_probe.core.exceptions import BadInput
from .code_sanitize import sanitized_completion

INVALID = "[invalid]"  # lm-eval's RegexFilter fallback


def regex_filter(text: str, pattern: str, group_select: int = 0, fallback: str = INVALID) -> str:
    """lm-eval's RegexFilter: all matches, the `group_select`-th; a tuple match -> its first non-empty group."""
    found = re.findall(pattern, text)
    if not found:
        return fallback
    m = found[group_select]
    if isinstance(m, tuple):
        m = next((g for g in m if g), None)
        if m is None:
            return fallback
    return m.strip()


GSM8K_STRICT = r"#### (\-?[0-9\.\,]+)"  # gsm8k.yaml:36
GSM8K_FLEXIBLE = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"  # gsm8k.yaml:42 (and gsm8k-cot.yaml), group_select -1
GSM8K_COT_STRICT = r"The answer is (\-?[0-9\.\,]+)."  # gsm8k-cot.yaml:49; the final "." matches any character


def oc_gsm8k(text: str) -> str:
    """OpenCompass gsm8k_postprocess: text before 'Question:', its last number, else 'NULL'."""
    nums = re.findall(r"\-?\d+\.\d+|\-?\d+", text.split("Question:")[0])
    return nums[-1] if nums else "NULL"


# MBPPEvaluator._process_answer: the first of these (DOTALL) that matches gives the code.
_OC_MBPP = [r"\[BEGIN\]\s*'(.*)'\s*\[DONE\]", r"BEGIN\s*'(.*)'\s*\[DONE\]", r"\[BEGIN\]\s*'(.*)'\s*DONE",
            r"BEGIN\s*'(.*)'\s*DONE", r"\[BEGIN\]\s*'(.*)\s*\[DONE\]", r"BEGIN\s*'(.*)\s*\[DONE\]",
            r"\[BEGIN\]\s*'(.*)\s*DONE", r"BEGIN\s*'(.*)\s*DONE", r"\[BEGIN\]\s*(.*)\s*\[DONE\]",
            r"BEGIN\s*(.*)\s*\[DONE\]", r"\[BEGIN\]\s*(.*)\s*DONE", r"BEGIN\s*(.*)\s*DONE",
            r"```python\s*(.*)\s*```", r"```\s*(.*)\s*```", r"```python\s*(.*)\s*$", r"```\s*(.*)\s*$",
            r"(.*)\s*```.*", r"\[BEGIN\]\s*'(.*)", r"\[BEGIN\](.*)", r"'(.*)'\s*\[DONE\]"]


def oc_mbpp(text: str) -> str:
    for pat in _OC_MBPP:
        m = re.search(pat, text, re.DOTALL)
        if m:
            text = m.group(1)
            break
    text = re.split(r"'?\s*\[?DONE\]?", text.split("```")[0])[0].replace("\\_", "_").strip()
    text = text[1:] if text.startswith("'") else text
    return text[:-1] if text.endswith("'") else text


def oc_humaneval_v2(text: str) -> str:
    """humaneval_postprocess_v2: the first fenced block if any, left-stripped."""
    blocks = re.findall(r"```\w*\n(.*?)```", text, re.DOTALL)
    return (blocks[0] if blocks else text).lstrip()


def oc_gpqa(text: str) -> str:
    """GPQA_Simple_Eval_postprocess_: the letter(s) in 'The correct answer is (X)', else ' '."""
    m = re.search(r"The correct answer is \(([^)]+)\)", text, re.IGNORECASE)
    return m.group(1).strip() if m else " "


# name -> (text, context) -> extracted; context carries what a rule needs besides the text (the prompt)
EXTRACTIONS: dict[str, Callable[[str, dict], object]] = {
    "lm-eval:gsm8k": lambda t, c: {"strict-match": regex_filter(t, GSM8K_STRICT),
                                   "flexible-extract": regex_filter(t, GSM8K_FLEXIBLE, -1)},
    "lm-eval:gsm8k_cot": lambda t, c: {"strict-match": regex_filter(t, GSM8K_COT_STRICT),
                                       "flexible-extract": regex_filter(t, GSM8K_FLEXIBLE, -1)},
    "lm-eval:humaneval": lambda t, c: c["prompt"] + t,  # create_test: doc prompt + response
    "lm-eval:none": lambda t, c: t,  # no filter: the response is the program (mbpp, mbpp_instruct)
    "opencompass:gsm8k_postprocess": lambda t, c: oc_gsm8k(t),
    "opencompass:mbpp": lambda t, c: oc_mbpp(t),
    "opencompass:humaneval_postprocess_v2": lambda t, c: oc_humaneval_v2(t),
    "opencompass:gpqa": lambda t, c: oc_gpqa(t),
    # one algorithm in three references (tasks/code_sanitize.py); the output depends on the Python version
    "fast-dllm:postprocess_code": lambda t, c: sanitized_completion(t, c["prompt"], c["entry_point"]),
    "dream:postprocess_code": lambda t, c: sanitized_completion(t, c["prompt"], c["entry_point"]),
    "dream-fork:build_predictions_instruct": lambda t, c: sanitized_completion(t, c["prompt"], c["entry_point"]),
}


def extract(rule: str, text: str, **context) -> object:
    if rule not in EXTRACTIONS:
        raise BadInput(f"unknown extraction rule {rule!r}; expected one of {', '.join(sorted(EXTRACTIONS))}")
    return EXTRACTIONS[rule](text, context)


def cut_each(text: str, stops: list[str] | tuple[str, ...]) -> str:
    """lm-eval model classes' cut: split at each stop string in turn, keep the part before it."""
    for s in stops:
        if s:
            text = text.split(s)[0]
    return text


def apply_stop_rule(rule: str, text: str, stops: list[str], specials: list[str] = (), eos: str = "") -> str:
    """Text (decoded with special tokens) -> what the reference model class hands to the scorer.
    'until': cut at each stop, then drop special tokens (LLaDA / Fast-dLLM); 'eos-until': keep what precedes
    the eos text, then cut at each stop (Dream); 'eos': the eos cut only (Dream's escape_until);
    'none': no cut, special tokens dropped (OpenCompass, Fast-dLLM HumanEval)."""
    if rule in ("eos-until", "eos"):
        text = text.split(eos)[0] if eos else text
        return cut_each(text, stops) if rule == "eos-until" else text
    if rule == "until":
        text = cut_each(text, stops)
    elif rule != "none":
        raise BadInput(f"unknown stop rule {rule!r}; expected until, eos-until, eos or none")
    for s in specials:
        text = text.replace(s, "")
    return text
