"""eval and shift with a preset's published protocol (runs/protocol.py): the reference prompt rendered with
the checkpoint's chat template, the reference stop rule and extraction, recorded in the config and card."""

from __future__ import annotations

import json

import pytest
import standins as st
from preset_variants import without_protocol

from mdlm_probe.adapters import load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.runs.protocol import protocol_of, score_outputs, score_text, special_strings
from mdlm_probe.runs.shift import ShiftGrid, run_shift
from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.tasks.benchmarks.gsm8k import render_llada_chat

PRESET = "llada-8b-instruct-gsm8k"  # OpenCompass: 4 fixed shots as chat turns, no stop cut, gsm8k_postprocess
SMALL = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 2}


@pytest.fixture(scope="module")
def chat_llada(tmp_path_factory):
    """A tiny LLaDA stand-in whose tokenizer has LLaDA's chat template, long enough for the 4-shot prompt."""
    return st.llada_checkpoint(tmp_path_factory.mktemp("ck") / "llada-chat", chat=True, max_length=8192)


def write_gsm8k(path, n=2):
    rows = [{"question": f"Ann has {i} pens and buys 2 more. How many pens?", "answer": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_with_a_protocol_builds_the_reference_prompt_and_records_it(tmp_path, chat_llada):
    data = write_gsm8k(tmp_path / "test.jsonl")
    summary = run_eval(chat_llada, "gsm8k", tmp_path / "run", sampler_overrides=SMALL, preset=PRESET, data_file=data,
                       dtype="float32")  # the stand-in computes in float32 only
    assert summary["n"] == 2
    bench = get_benchmark("gsm8k", data_file=data)
    tok = load_model(chat_llada).tokenizer
    recs = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    for r, s in zip(recs, bench.load()):
        want = render_llada_chat(bench.protocol_prompt(s, "opencompass:gsm8k_gen_1d7fe4", 4))
        assert r["prompt"] == want  # the reference string, byte for byte (tests/tasks/test_protocol_goldens.py)
        assert r["prompt_ids"] == tok(want, add_special_tokens=False)["input_ids"]
        assert want.count("<|start_header_id|>user") == 5 and r["prompt_info"]["protocol"] == PRESET
        # scored by the protocol: the stop rule's text and OpenCompass's extraction of it
        assert r["protocol_output"]["extraction"] == score_text(
            protocol_of(PRESET), r["raw_text"], s, specials=special_strings(tok))["protocol_output"]["extraction"]
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["protocol"]["prompt_format"] == "opencompass:gsm8k_gen_1d7fe4"
    assert cfg["card"]["protocol"]["applied"] == cfg["protocol"]
    assert cfg["card"]["protocol"]["fields"]["extraction"]["value"] == "opencompass:gsm8k_postprocess"
    assert "opencompass:gsm8k_postprocess" in cfg["card"]["extraction"] and cfg["card"]["deviations"] == []


def test_the_protocols_stop_rule_and_extraction_score_a_hand_made_output(chat_llada):
    sample = type("S", (), {"question": "q", "reference_answer": "18"})()
    tok = load_model(chat_llada).tokenizer
    specials = special_strings(tok)
    # OpenCompass: no cut, special tokens dropped, the last number before any "Question:"
    oc = score_text(protocol_of(PRESET), "So 9*2 = 18.<|eot_id|>Question: 5 or 7?<|endoftext|>", sample,
                    specials=specials)
    assert oc["protocol_output"] == {"text": "So 9*2 = 18.Question: 5 or 7?", "extraction": "18"}
    assert oc["extracted"] == "18" and oc["correct"] is True
    # Fast-dLLM: cut at each `until`, lm-eval's strict and flexible filters
    fd = protocol_of("fast-dllm-llada-8b-instruct-gsm8k")
    got = score_text(fd, "It is 20.\n#### 19<|eot_id|>Question: 18", sample, specials=specials)
    assert got["protocol_output"]["text"] == "It is 20.\n#### 19"
    assert got["protocol_output"]["extraction"] == {"strict-match": "19", "flexible-extract": "19"}
    assert got["extracted"] == "19" and got["correct"] is False and got["verdict"] == "wrong"
    none = score_text(fd, "no number here", sample, specials=specials)
    assert none["extracted"] is None and none["verdict"] == "no_answer"
    outs = [{"raw_text": "The answer is 18<|endoftext|>"}]
    assert score_outputs(load_model(chat_llada), protocol_of(PRESET), outs, [sample])[0]["correct"] is True


def test_a_protocol_needs_a_chat_template_and_unhonoured_presets_are_refused(tmp_path, chat_llada, monkeypatch):
    data = write_gsm8k(tmp_path / "test.jsonl")
    plain = st.llada_checkpoint(tmp_path / "plain")  # no chat template
    with pytest.raises(BadInput, match=f"^--preset {PRESET} sets prompt_format=.*its tokenizer has no chat template$"):
        run_eval(plain, "gsm8k", tmp_path / "a", sampler_overrides=SMALL, preset=PRESET, data_file=data)
    assert not (tmp_path / "a").exists()
    # no prompt format to apply (a preset with its protocol blanked), so its lm-eval task is the reason given, with
    # the command
    without_protocol(monkeypatch, "fast-dllm-dream-v0-base-7b-gsm8k")
    with pytest.raises(BadInput, match="--preset fast-dllm-dream-v0-base-7b-gsm8k .*lm_eval_task.*`mdlm-probe lm-eval "
                                       "--preset"):
        run_eval(chat_llada, "gsm8k", tmp_path / "b", sampler_overrides=SMALL, preset="fast-dllm-dream-v0-base-7b-gsm8k",
                 data_file=data)
    # shift's refusal of a field it does not honour: tests/runs/test_eval_protocol_code.py (every shipped code
    # preset is honoured now)


def test_shift_applies_the_same_protocol(tmp_path, chat_llada):
    data = write_gsm8k(tmp_path / "test.jsonl", n=1)
    run_eval(chat_llada, "gsm8k", tmp_path / "e", sampler_overrides=SMALL, preset=PRESET, data_file=data,
             dtype="float32")  # the same protocol: its records can stand in for the clean run
    run = run_shift([str(chat_llada)], tmp_path / "s", ShiftGrid(modes=["delete"], fractions=[0.1]), sampler=SMALL,
                    limit=1, benchmark="gsm8k", data_file=data, preset=PRESET, dtype="float32",
                    clean_from=[tmp_path / "e"])
    ev = json.loads((tmp_path / "e" / "samples.jsonl").read_text().splitlines()[0])
    clean = next(r for r in run.records if r["id"].endswith("@clean"))
    assert clean["output_ids"] == ev["output_ids"] and clean["protocol_output"] == ev["protocol_output"]
    bench = get_benchmark("gsm8k", data_file=data)
    want = render_llada_chat(bench.protocol_prompt(bench.load()[0], "opencompass:gsm8k_gen_1d7fe4", 4))
    assert {r["prompt"] for r in run.records} == {want}
    assert all("protocol_output" in r for r in run.records)
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["protocol"]["preset"] == PRESET and cfg["card"]["protocol"]["applied"] == cfg["protocol"]
