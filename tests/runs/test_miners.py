"""Failure-pattern detectors against the hand-labelled cases (tests/fixtures/miners/) and key examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_probe.runs import miners

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "miners"

THRESHOLD = 0.9  # precision and recall each detector must reach on its labelled cases


@pytest.fixture(scope="module")
def cases():
    return miners.load_labelled(FIXTURES)


@pytest.fixture(scope="module")
def scores(cases):
    return miners.detector_quality(cases)


@pytest.mark.parametrize("name", list(miners.DETECTORS))
def test_enough_labelled_cases(cases, name):
    mine = [c for c in cases if name in c["label"]]
    pos = [c for c in mine if c["label"][name]]
    neg = [c for c in mine if not c["label"][name]]
    real = [c for c in mine if not c["source"].startswith("handwritten")]
    assert len(pos) >= 20 and len(neg) >= 20, (name, len(pos), len(neg))
    assert len(real) * 2 >= len(mine), f"{name}: only {len(real)} of {len(mine)} cases are real outputs"
    for c in mine:
        assert {"text", "reference", "prompt", "source"} <= set(c), c.get("id")


@pytest.mark.parametrize("name", list(miners.DETECTORS))
def test_precision_and_recall(scores, name):
    s = scores[name]
    assert s["precision"] >= THRESHOLD and s["recall"] >= THRESHOLD, (name, s["misses"])


def rec(text, reference="", prompt="", raw_text=None):
    return {"id": "t/1", "text": text, "reference": reference, "prompt": prompt, "raw_text": raw_text}


def test_trailing_zero_reports_number_span_and_zeros():
    r = rec("Sales were $1,20 and 120*3=36", reference="300*4=<<300*4=1200>>1,200\n#### 1200",
            prompt="4 shelves of 300 books")
    got = miners.DETECTORS["trailing-zero"](r)
    assert [(f.evidence, f.start, f.end) for f in got] == [("1,20", 12, 16), ("120", 21, 24)]
    assert got[0].details == {"number": "120", "reference_number": "1200", "zeros_lost": 1}
    two = miners.DETECTORS["trailing-zero"](rec("#### 12", reference="#### 1200"))
    assert two[0].details["zeros_lost"] == 2
    assert miners.DETECTORS["trailing-zero"](rec("#### 200", reference="2,000")) != []


def test_trailing_zero_ignores_numbers_the_problem_uses():
    # "30" is 300 without a zero, but the prompt says "30 boxes"; a lone digit in the body never counts.
    r = rec("He packs 30 boxes, 3 each.", reference="10*30=300\n#### 300", prompt="He has 30 boxes.")
    assert miners.DETECTORS["trailing-zero"](r) == []
    assert miners.DETECTORS["trailing-zero"](rec("He buys 2 more.\n#### 1999", reference="#### 2000")) == []
    assert miners.DETECTORS["trailing-zero"](rec("#### 1200", reference="1,200")) == []


# A few-shot prompt in lm-eval's gsm8k format; the exemplar is full of numbers (120, 90, 153, ...).
SHOT = "Question: A baker makes 24 muffins an hour for 5 hours and sells 90. Then 153 more?\nAnswer: 24*5=120\n#### 120\n\n"
Q = "Question: A printer prints 40 pages a minute for 30 minutes. How many pages?\nAnswer:"


def test_question_is_the_last_question_of_the_prompt():
    assert miners.question({"prompt": SHOT + Q}) == Q
    llada = "<|start_header_id|>user<|end_header_id|>\n\n" + SHOT + Q + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    assert miners.question({"prompt": llada}).startswith(Q) and "muffins" not in miners.question({"prompt": llada})
    qwen = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" + SHOT + Q + "<|im_end|>\n"
    assert miners.question({"prompt": qwen}) == Q + "<|im_end|>\n"
    assert miners.question({"prompt": "Q: one?\nA: 1\n\nQ: two?\nA:"}) == "Q: two?\nA:"
    cut = (SHOT + Q)[40:]  # cut from the left: the last question is still whole
    assert miners.question({"prompt": cut}) == Q
    assert miners.question({"prompt": "Ann has 3 pens. How many?"}) == "Ann has 3 pens. How many?"  # no marker


def test_trailing_zero_exemplar_numbers_do_not_hide_a_drop():
    ref = "40*30=<<40*30=1200>>1200\n#### 1200"
    r = rec("40*30=120 pages\n#### 130", reference=ref, prompt=SHOT + Q)
    assert [(f.evidence, f.details["reference_number"]) for f in miners.DETECTORS["trailing-zero"](r)] == [("120", "1200")]
    r["prompt"] = SHOT.replace("Question: ", "") + Q.replace("Question: ", "")  # no marker: the whole prompt counts
    assert miners.DETECTORS["trailing-zero"](r) == []


def test_trailing_zero_final_answer_of_any_length():
    got = miners.DETECTORS["trailing-zero"](rec("#### 2", reference="#### 2000"))
    assert [(f.evidence, f.start) for f in got] == [("2", 5)]
    assert got[0].details == {"number": "2", "reference_number": "2000", "zeros_lost": 3, "final_answer": True}
    r = rec("He keeps 80-60=2.\nThe answer is $2", reference="80-60=<<80-60=20>>20\n#### 20", prompt=SHOT + Q)
    assert [f.evidence for f in miners.DETECTORS["trailing-zero"](r)] == ["2"]
    r = rec("The question uses 12: 108+12=12\n# 12", reference="108+12=120\n#### 120", prompt="Question: 108 and 12?")
    assert [(f.start, f.details.get("final_answer")) for f in miners.DETECTORS["trailing-zero"](r)] == [(len(r["text"]) - 2, True)]
    # the final answer is before a made-up next question; numbers not ending the reference's answer do not count
    assert miners.DETECTORS["trailing-zero"](rec("#### 900\n\nQuestion: 9 pens?\nAnswer: #### 9", reference="#### 900")) == []
    assert miners.DETECTORS["trailing-zero"](rec("#### 20", reference="#### 205")) == []
    assert miners.DETECTORS["trailing-zero"](rec("#### 1200", reference="#### 120")) == []
    r = {**rec("#### 2", reference="2*10 is twenty"), "reference_answer": "20"}  # the record's own answer field
    assert [f.details["zeros_lost"] for f in miners.DETECTORS["trailing-zero"](r)] == [1]


def test_other_detectors_read_the_question_not_the_exemplars():
    # "153" is in the exemplar only: the swap of the reference's 135 still counts
    got = miners.DETECTORS["misplaced-char"](rec("#### 153", reference="#### 135", prompt=SHOT + Q))
    assert [f.evidence for f in got] == ["153"]
    assert miners.DETECTORS["misplaced-char"](rec("#### 153", reference="#### 135", prompt="Then 153 more?")) == []


def test_repeated_token_chain_idiom_is_not_a_repeat():
    ref = "12*30=360 360-80=280 #### 280"
    assert miners.DETECTORS["repeated-token"](rec("12*30=360 360-80=280 #### 280", ref)) == []
    assert miners.DETECTORS["repeated-token"](rec("12*30=360 360 360-80=280 #### 280", ref)) != []
    assert miners.DETECTORS["repeated-token"](rec("12*30=360 ##### 280", ref))[0].evidence == "#####"


def test_misplaced_char_examples_from_the_issue():
    f = miners.DETECTORS["misplaced-char"]
    assert f(rec("It costs 12.5", "It costs 1.25"))[0].details == {"reference_word": "1.25"}
    assert f(rec("#### 153", "#### 135"))[0].evidence == "153"
    assert f(rec("#### 135", "#### 135")) == []
    assert f(rec("#### 155", "#### 135")) == []  # a substitution, not a move


def test_shift_artifact_insert_and_drop():
    f = miners.DETECTORS["shift-artifact"]
    ref = "12*30=360 360-80=280 #### 280"
    ins = f(rec("12*30=3360 360-80=280 #### 280", ref))
    assert ins and ins[0].details["edit"] == "inserted" and ins[0].details["char"] == "3"
    drop = f(rec("12*30=360 36-80=280 #### 280", ref))
    assert drop and drop[0].details["edit"] == "dropped" and drop[0].details["char"] == "0"
    assert f(rec(ref, ref)) == [] and f(rec("12*30=361 360-80=281 #### 281", ref)) == []


def test_slack_and_eos_truncation():
    assert miners.DETECTORS["slack-leak"](rec("#### 1<slack>00"))[0].evidence == "<slack>"
    assert miners.DETECTORS["slack-leak"](rec("#### 100", raw_text="#### 1<slack>00<eos>")) == []
    eos = miners.DETECTORS["eos-truncation"]
    assert eos(rec("12*30=", raw_text="12*30=<eos><eos><eos>"))
    assert eos(rec("12*30=360", raw_text="12*30=360<eos>#### 360<eos>"))[0].details["why"] == "answer after EOS"
    assert eos(rec("12*30=360 #### 360", raw_text="12*30=360 #### 360<eos><eos>")) == []
    assert eos(rec("12*30=", raw_text="12*30=")) == []  # no EOS: the canvas ran out
    assert eos(rec("12*30=")) == []  # no raw_text: nothing to judge


def test_eos_flood_empty_or_only_end_of_text():
    flood = miners.DETECTORS["eos-flood"]
    assert flood(rec("", raw_text="<eos><eos><eos>"))[0].details == {"eos_markers": 3, "output_tokens": 0}
    assert flood(rec("<|endoftext|> <|endoftext|>"))  # a tokenizer whose EOS the collapse map kept
    assert flood(rec("  \n"))
    assert not flood(rec("#")) and not flood(rec("0<eos>"))


def test_resolve_patterns():
    from mdlm_probe.core.exceptions import BadInput

    assert miners.resolve_patterns("all") == list(miners.DETECTORS)
    assert miners.resolve_patterns("trailing-zero,slack-leak") == ["trailing-zero", "slack-leak"]
    with pytest.raises(BadInput, match="unknown pattern"):
        miners.resolve_patterns("zeros")


def test_fixture_files_are_valid_jsonl():
    for f in FIXTURES.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            case = json.loads(line)
            assert set(case["label"]) <= set(miners.DETECTORS), f


def test_real_output_cases_exactly(cases):
    """Key real outputs of the partly trained tiny-ce, with the exact evidence expected."""
    by_text = {(c["text"], c["source"]): c for c in cases}
    # "1200/3=400" decoded "120/3=30": 1200 lost one zero at the start of the text
    c = next(c for (t, s), c in by_text.items() if t.startswith("120/3=30") and "collapse surface" in s
             and "trailing-zero" in c["label"])
    f = miners.DETECTORS["trailing-zero"](c)
    assert [(x.evidence, x.start, x.details["reference_number"], x.details["zeros_lost"]) for x in f] == [("120", 0, "1200", 1)]
    # under the ctc map "100+900=..." reads "10+90=...": two numbers each lost a zero
    c = next(c for c in cases if c["text"].startswith("10+90=10 10-970") and "trailing-zero" in c["label"])
    got = {(x.evidence, x.details["reference_number"]) for x in miners.DETECTORS["trailing-zero"](c)}
    assert got == {("10", "100"), ("90", "900")}
    # the answer written after the first EOS
    c = next(c for c in cases if c["text"] == "10000=10 ### 1000" and "eos-truncation" in c["label"])
    assert miners.DETECTORS["eos-truncation"](c)[0].details["why"] == "answer after EOS"


def test_fixtures_are_what_build_makes_from_the_handwritten_cases(tmp_path):
    """analyses/miner_cases/build.py reruns from the repository alone: the real rows kept, hand.py's rows rebuilt."""
    build = Path(__file__).resolve().parents[2] / "analyses" / "miner_cases" / "build.py"
    r = subprocess.run([sys.executable, str(build), "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for f in FIXTURES.glob("*.jsonl"):
        assert (tmp_path / f.name).read_text(encoding="utf-8") == f.read_text(encoding="utf-8"), f.name
