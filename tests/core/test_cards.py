"""Run cards: recorded by eval and shift, printed by `card`, compared in the report, and no bar to resuming."""

from __future__ import annotations

import json

from mdlm_probe.core.cards import card_columns, card_markdown, default_dtype, differing_fields
from mdlm_probe.core.checkpoints import resolve
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.report import build_report
from mdlm_probe.runs.shift import ShiftGrid, run_shift

FAST = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 4}
CARD_KEYS = {"code_commit", "code_dirty", "torch", "transformers", "mdlm_probe", "device", "dtype", "checkpoint_hash",
             "tokenizer_hash", "chat_template_hash", "preset", "overrides", "scorer", "extraction"}


def config(out):
    return json.loads((out / "config.json").read_text())


def test_eval_records_a_card_and_resumes_when_only_the_card_changed(tmp_path, tiny_random):
    out = tmp_path / "run"
    run_eval("tiny-random", "synthetic", out, dict(FAST), limit=4, model=tiny_random)
    card = config(out)["card"]
    assert CARD_KEYS <= set(card)
    assert card["overrides"] == FAST and card["preset"] is None and card["dtype"] is None  # not given
    assert card["checkpoint_hash"] == config(out)["checkpoint_hash"] and card["tokenizer_hash"]
    assert card["device"]["count"] >= 1 and card["device"]["type"] == "cpu"
    assert card["scorer"] == "numeric match" and "flexible" in card["extraction"]
    # a rerun on another machine / commit is the same config: it resumes and keeps the first card
    cfg = config(out)
    cfg["card"] = {**card, "code_commit": "0" * 40, "code_dirty": True, "device": {"type": "cuda", "name": "X", "count": 8}}
    (out / "config.json").write_text(json.dumps(cfg))
    before = (out / "samples.jsonl").read_bytes()
    run_eval("tiny-random", "synthetic", out, dict(FAST), limit=4, model=tiny_random)
    assert (out / "samples.jsonl").read_bytes() == before
    assert config(out)["card"]["code_commit"] == "0" * 40


def test_shift_records_a_card(tmp_path):
    out = tmp_path / "shift"
    sampler = {"gen_length": 16, "steps": 8, "block_length": 16, "batch_size": 2}
    run_shift(["tiny-random"], out, ShiftGrid(modes=["delete"], fractions=[0.0, 0.1], ats=[0.5]), limit=2,
              sampler=sampler)
    card = config(out)["card"]
    assert CARD_KEYS <= set(card) and card["overrides"] == sampler
    assert card["checkpoint_hash"] == config(out)["checkpoints"][0]["hash"]


def test_card_command_prints_markdown(tmp_path, tiny_random, cli, capsys):
    out = tmp_path / "run"
    run_eval("tiny-random", "synthetic", out, dict(FAST), limit=2, model=tiny_random, dtype="float32")
    capsys.readouterr()
    assert cli("card", str(out)) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Run card: run") and "| field | value |" in text
    assert "| dtype | float32 |" in text and "| overrides.steps | 8 |" in text and "| sampler.steps | 8 |" in text
    assert "| chat | true |\n| num_fewshot | 0 |" in text  # the prompt format: chat template and shots together
    assert card_markdown(config(out)) .count("\n| ") == text.count("\n| ")
    assert cli("card", str(tmp_path / "nothing")) == 2


def test_report_marks_fields_in_which_runs_differ(tmp_path, tiny_random):
    a, b = tmp_path / "a", tmp_path / "b"
    run_eval("tiny-random", "synthetic", a, dict(FAST), limit=2, model=tiny_random, dtype="float32")
    run_eval("tiny-random", "synthetic", b, {**FAST, "steps": 4}, limit=2, model=tiny_random)
    cfg = config(b)
    cfg["card"]["dtype"] = "bfloat16"  # as if run with --dtype bfloat16
    (b / "config.json").write_text(json.dumps(cfg))
    assert differing_fields([config(a)["card"], cfg["card"]]) == {"dtype", "overrides.steps"}
    html = build_report([a, b], tmp_path / "rep").read_text()
    assert "Run cards" in html
    assert '<tr class="differs"><td>≠ dtype</td><td>float32</td><td>bfloat16</td></tr>' in html
    assert '<tr class="differs"><td>≠ sampler.steps</td>' in html
    assert '<tr><td>scorer</td>' in html  # equal fields are not marked
    assert (tmp_path / "rep" / "run_cards.csv").is_file()
    single = build_report([a], tmp_path / "rep1").read_text()
    assert "Run cards" in single and 'class="differs"' not in single


def test_card_columns_one_per_shift_checkpoint_none_for_a_compare_folder():
    """The demo's report compared eval runs with a three-checkpoint shift run and a compare folder: every
    field came out "different". A shift run shows one column per checkpoint; a compare folder none."""
    card = {"code_commit": "abc", "dtype": None, "checkpoint_hash": None}
    ev = {"command": "eval", "card": {**card, "checkpoint_hash": "h1"}, "sampler": {"steps": 48}}
    sh = {"command": "shift", "card": {**card, "checkpoint_hash": "h1,h2"},
          "checkpoints": [{"name": "a", "hash": "h1", "sampler": {"steps": 48}},
                          {"name": "b", "hash": "h2", "sampler": {"steps": 48}}]}
    cols = card_columns("eval-a", ev) + card_columns("shift", sh) + card_columns("compare", {"command": "compare"})
    assert [label for label, _ in cols] == ["eval-a", "shift · a", "shift · b"]
    assert differing_fields([c for _, c in cols]) == {"checkpoint_hash"}
    assert differing_fields([c for _, c in cols[:2]]) == set()  # the same checkpoint lines up field by field


def test_cards_compare_normalised_values_not_raw_strings():
    """`dtype null` (the adapter's default) against `float32` on a float32 checkpoint, `fp32` against
    `float32`, and an extraction rule differing only by an appended note are not differences; a real
    dtype or rule difference still is."""
    folder = str(resolve("tiny-ce"))
    assert default_dtype(folder) == "float32"
    base = {"dtype": "float32", "extraction": "strict when found, else flexible (last number)", "scorer": "numeric match"}
    given_null = {"command": "eval", "checkpoint": folder, "card": {**base, "dtype": None}}
    given_f32 = {"command": "eval", "checkpoint": folder, "card": base}
    cards = [c for run in (given_null, given_f32) for _, c in card_columns(run["command"], run)]
    assert cards[0]["dtype"] == "float32"  # shown resolved, not as null
    assert differing_fields(cards) == set()
    noted = {**base, "dtype": "fp32", "extraction": base["extraction"] + "; both rates in summary.json"}
    assert differing_fields([base, noted]) == set()
    assert differing_fields([base, {**base, "dtype": "bfloat16"}]) == {"dtype"}
    assert differing_fields([base, {**base, "extraction": "flexible (last number)"}]) == {"extraction"}
    # a folder that is gone leaves null as null: unknown, so it still differs from float32
    gone = {"command": "eval", "checkpoint": "/nonexistent/ckpt", "card": {**base, "dtype": None}}
    assert differing_fields([card_columns("g", gone)[0][1], base]) == {"dtype"}


def test_the_card_records_a_presets_protocol_and_names_an_lm_eval_pin_it_does_not_meet():
    from mdlm_probe.core.cards import build_card, protocol_deviations
    from mdlm_probe.tasks.presets import card_protocol, get_preset
    name = "llada-8b-base-gsm8k"  # pins lm-eval 0.4.8 (eval_llada_lm_eval.sh)
    proto = card_protocol(name)
    card = build_card(benchmark="gsm8k", checkpoint=None, checkpoint_hash=None, dtype=None, device="cpu",
                      overrides={}, chat=False, preset=name, protocol=proto)
    p = get_preset(name)
    for k in ("dtype", "bos", "truncation", "prompt_format", "fewshot_rule", "stop_rule", "stop_strings",
              "extraction", "lm_eval_version", "num_fewshot", "chat", "lm_eval_task"):
        assert card["protocol"]["fields"][k] == {"value": p.settings[k], "source": p.sources[k]}
    assert card["protocol"]["not_reproduced"] and all(x["reason"] for x in card["protocol"]["not_reproduced"])
    assert protocol_deviations(proto, "0.4.8") == []
    (dev,) = protocol_deviations(proto, "0.4.13")
    assert "lm_eval_version" in dev and "0.4.8" in dev and "0.4.13" in dev
    assert "none" in protocol_deviations(proto, None)[0]  # lm-eval not installed at all
    assert protocol_deviations(card_protocol("llada-8b-instruct-gsm8k"), "0.4.13") == []  # OpenCompass: no pin
    plain = build_card(benchmark="gsm8k", checkpoint=None, checkpoint_hash=None, dtype=None, device="cpu",
                       overrides={}, chat=False)
    assert "protocol" not in plain and "deviations" not in plain
