"""Decoding dynamics (runs/dynamics) against hand-built trajectories, and the command's bad input."""

from __future__ import annotations

import json
import math

import pytest

from mdlm_probe.cli.app import main
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.dynamics import analyse_run
from mdlm_probe.runs.dynamics.aggregate import condition
from mdlm_probe.runs.dynamics.align import Vocab, canvas_map
from mdlm_probe.runs.dynamics.order import kendall_tau_b, parallelism, share_before, tau_order, tau_within_blocks
from mdlm_probe.runs.dynamics.record import analyse_record
from mdlm_probe.runs.dynamics.stats import auc, risk_ratio

# A character vocabulary: ids 0 pad, 1 mask, 2 slack, 3 eos, then one id per character.
CHARS = "0123456789+=# abc"
SLACK, EOS = 2, 3
VOCAB = Vocab(piece=lambda i: "" if i < 4 else CHARS[i - 4], eos_ids={EOS}, slack_id=SLACK, drop_ids={0, 1})


def ids(text: str) -> list[int]:
    return [4 + CHARS.index(c) for c in text]


# ----------------------------------------------------------------------------------------- order
def test_tau_left_to_right_and_reverse():
    assert tau_order([0, 1, 2, 3]) == pytest.approx(1.0)
    assert tau_order([3, 2, 1, 0]) == pytest.approx(-1.0)


def test_tau_b_with_ties_in_one_step():
    # positions 0..3, steps [0, 0, 1, 1]: concordant pairs 4, discordant 0, ties in steps 2 of 6 pairs
    # tau-b = 4 / sqrt(6 * 4)
    assert tau_order([0, 0, 1, 1]) == pytest.approx(4 / math.sqrt(24))
    # a mixed case by hand: steps [1, 0, 1]: pairs (0,1) D, (0,2) tie, (1,2) C -> 0 / sqrt(3 * 2)
    assert tau_order([1, 0, 1]) == pytest.approx(0.0)
    assert kendall_tau_b([1, 2, 3], [5, 5, 5]) is None  # everything in one step: no order to measure


def test_tau_skips_positions_the_model_did_not_commit():
    assert tau_order([0, -1, 1, 2]) == pytest.approx(1.0)


def test_tau_blocks_in_order_but_filled_backwards():
    steps = [1, 0, 3, 2]  # two blocks, each filled right to left
    blocks = [0, 0, 1, 1]
    # whole canvas: pairs C = (0,2),(0,3),(1,2),(1,3) = 4, D = (0,1),(2,3) = 2 -> (4-2)/6
    assert tau_order(steps) == pytest.approx(2 / 6)
    assert tau_within_blocks(steps, blocks) == pytest.approx(-1.0)


def test_parallelism_counts_tokens_per_step():
    assert parallelism([0, 0, 0, 1, 2, 2, -1]) == (2.0, 3)  # 6 tokens over 3 steps, at most 3
    assert parallelism([-1, -1]) == (None, 0)


def test_share_before_content():
    # content positions 0, 1; two slack positions committed at steps 0 and 1, content from step 2
    assert share_before([2, 3, 0, 1], [0, 1]) == pytest.approx(0.5)
    assert share_before([0, 3, 1, 2], [0, 1]) == pytest.approx(0.0)


def test_auc_and_risk_ratio():
    assert auc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auc([1, 1], [True, False]) == 0.5
    rr, lo, hi = risk_ratio(10, 20, 5, 20)
    assert rr == pytest.approx(2.0) and lo < 2.0 < hi


# ----------------------------------------------------------------------------------------- alignment
def test_canvas_map_ctc_merges_runs_and_cuts_at_eos():
    out = ids("10") + [SLACK] + ids("0") + ids("0") + [EOS] + ids("9")  # "10<slack>00" -> ctc "100"
    cm = canvas_map(out, "100", "ctc", VOCAB)
    assert cm.aligned and cm.first_eos == 5
    assert cm.chars == [[0], [1], [3, 4]]
    assert canvas_map(out, "1000", "surface", VOCAB).chars == [[0], [1], [3], [4]]


def record(text_ids, steps, *, text, reference, answer, correct, conf=None, collapse="surface", **extra):
    return {"id": "synthetic/1", "benchmark": "synthetic", "ckpt": "toy", "prompt": "Q?\n", "reference": reference,
            "reference_answer": answer, "output_ids": text_ids, "text": text, "collapse": collapse,
            "correct": correct, "trajectory": {"commit_step": steps, "confidence": conf or [0.9] * len(steps),
                                               "block": [0] * len(steps)},
            "sampler": {"cache": "none", "threshold": None, "block_length": len(steps), "steps": len(steps)},
            "intervention": None, **extra}


def test_trailing_zero_before_leading_digit_and_eos():
    # "#### 300<eos>": EOS commits first (step 0), the zeros (positions 6, 7) at steps 1 and 2, the 3 at step 5
    out = ids("#### 300") + [EOS]
    steps = [3, 4, 6, 7, 8, 5, 1, 2, 0]
    row = analyse_record(record(out, steps, text="#### 300", reference="100*3=300 #### 300", answer="300",
                                correct=True), VOCAB)
    ans = [n for n in row["numbers"] if n["final_answer"]][0]
    assert ans["steps"] == [5, 1, 2] and ans["tz_before_lead"] and not ans["same_step"]
    assert row["answer_tz_before_lead"] is True
    assert row["eos_commit_step"] == 0 and row["eos_before_answer"] is True
    assert row["length_fixed_step"] == 8 and row["premature"] is False


def test_premature_eos_inside_the_answer():
    out = ids("#### 30") + [EOS, SLACK]
    steps = list(range(9))
    row = analyse_record(record(out, steps, text="#### 30", reference="#### 300", answer="300", correct=False),
                         VOCAB)
    assert row["premature"] is True
    assert row["tokens"]["answer"] == {"right": [0.9, 0.9], "wrong": []}


def test_wrong_tokens_have_their_commit_confidence():
    out = ids("#### 310")
    conf = [0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.2, 0.7]
    row = analyse_record(record(out, list(range(8)), text="#### 310", reference="#### 300", answer="300",
                                correct=False, conf=conf), VOCAB)
    assert row["tokens"]["answer"] == {"right": [0.8, 0.7], "wrong": [0.2]}


def test_origin_same_step_and_cross_step():
    # "5+5=10 10": the result repeated back to back (a repeated-token artifact). Its pair is the last "0" of the
    # first copy (position 5) and the "1" of the second (position 7).
    text = "5+5=10 10 #### 10"
    out = ids(text)
    base = list(range(len(out)))
    same = list(base)
    same[7] = same[5]  # both committed in one step
    rec = dict(reference="5+5=10 #### 10", answer="10", correct=True)
    row = analyse_record(record(out, same, text=text, **rec), VOCAB)
    rep = [o for o in row["origins"] if o["pattern"] == "repeated-token"]
    assert rep and rep[0]["positions"] == [5, 7] and rep[0]["origin"] == "same-step"
    row = analyse_record(record(out, base, text=text, **rec), VOCAB)
    rep = [o for o in row["origins"] if o["pattern"] == "repeated-token"]
    assert rep[0]["origin"] == "cross-step"
    assert rep[0]["masked_neighbourhood"] is True  # positions 8, 9 commit later than position 7
    late = [20 + p for p in base]  # the pair last: every neighbour within 2 positions already committed
    for step, p in enumerate((3, 4, 6, 8, 9)):
        late[p] = step
    row = analyse_record(record(out, late, text=text, **rec), VOCAB)
    rep = [o for o in row["origins"] if o["pattern"] == "repeated-token"]
    assert rep[0]["masked_neighbourhood"] is False


def test_shift_records_get_their_setting_as_condition():
    r = {"id": "synthetic/1@insert-0.05", "sampler": {"cache": "prefix", "threshold": 0.9, "block_length": 16,
                                                      "steps": 48}}
    assert condition(r) == "prefix thr0.9 b16s48 insert-0.05"


# ----------------------------------------------------------------------------------------- runs and bad input
def write_run(tmp_path, recs):
    (tmp_path / "config.json").write_text(json.dumps({"command": "eval", "ckpt": "tiny-ce",
                                                      "checkpoint": "tiny-ce"}))
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return tmp_path


def test_run_without_trajectories_is_one_line_exit_2(tmp_path, capsys):
    rec = record(ids("#### 3"), [0] * 6, text="#### 3", reference="#### 3", answer="3", correct=True)
    rec["trajectory"] = None
    write_run(tmp_path, [rec])
    with pytest.raises(BadInput, match="no record has a trajectory"):
        analyse_run(tmp_path)
    assert main(["dynamics", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mdlm-probe: error:")


def test_not_a_run_directory_exit_2(tmp_path, capsys):
    assert main(["dynamics", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_tiny_eval_run_end_to_end(tmp_path):
    """A real (1-sample) eval run of a shipped checkpoint: the files appear and the record is aligned."""
    out = tmp_path / "run"
    assert main(["eval", "synthetic", "--ckpt", "tiny-ce", "--limit", "2", "--out", str(out), "--no-progress"]) == 0
    assert main(["dynamics", str(out), "--quiet"]) == 0
    rows = [json.loads(l) for l in (out / "dynamics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["aligned"] for r in rows)
    assert "tau_b" in (out / "dynamics_summary.csv").read_text()
    # the report's section reads the summary just written, and draws the heat map of the chosen samples
    from mdlm_probe.core.rundir import load_run
    from mdlm_probe.report.dynamics import heatmap_samples, section_dynamics
    run = load_run(out)
    sec = section_dynamics([run])
    assert sec["plot"].startswith("data:image/png;base64,")
    assert sec["order"]["rows"] and "tau_b" in sec["order"]["columns"]
    picked = heatmap_samples([run])
    assert len(picked) <= 4 and all(c == "tiny-ce" for c, _ in picked)
    assert [r["id"] for _, r in picked if r["correct"]] == sorted(r["id"] for _, r in picked if r["correct"])


def test_report_section_absent_without_trajectories(tmp_path):
    from mdlm_probe.core.rundir import load_run
    from mdlm_probe.report.dynamics import section_dynamics
    rec = record(ids("#### 3"), [0] * 6, text="#### 3", reference="#### 3", answer="3", correct=True)
    rec["trajectory"] = None
    assert section_dynamics([load_run(write_run(tmp_path, [rec]))]) is None
