"""Arena-Hard-Auto judging pieces: verdict parsing and scoring of both versions (against verdicts.json, made with
its own code), reading judge configs of both layouts (our own prompts), and the endpoint's retries, against the
scripted server in tests/helpers/arena_server.py (127.0.0.1 only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena_server import ScriptedJudge
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.arena_judge import (A_SIDE, Endpoint, judge_game, legacy_rows, load_judge_config, main_rows,
                                          parse_legacy, parse_main, sha256)

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "arena_hard"
VERDICTS = json.loads((FIX / "verdicts.json").read_text())
LEGACY_CFG = FIX / "judge_config_legacy.yaml"
MAIN_CFG = FIX / "judge_main" / "config" / "arena-hard-v0.1.yaml"


@pytest.mark.parametrize("case", VERDICTS["texts"], ids=[t["name"] for t in VERDICTS["texts"]])
def test_parsing_matches_both_versions(case):
    assert parse_main(case["text"], VERDICTS["main"]["regex_patterns"]) == case["main"]
    label, again = parse_legacy(case["text"], VERDICTS["legacy"]["regex_pattern"])
    assert (label, again) == (case["legacy"]["score"], case["legacy"]["try_again"])


def test_label_scores_match_main_show_result():
    for label, games in VERDICTS["main"]["show_result_scores"].items():
        for g, want in (("game1", games["game1"]), ("game2", games["game2"])):
            if isinstance(want, str):  # main's show_result crashes on it (KeyError): we drop the question instead
                assert label not in A_SIDE
                assert main_rows(label, "A=B") is None and main_rows("A=B", label) is None
                continue
            # game 1 rows are complemented (A = baseline); game 2's are the model's as they stand
            rows = main_rows(label, "A=B")[1:] if g == "game1" else main_rows("A=B", label)[:-1]
            assert rows == want


def test_label_battles_match_legacy_show_result():
    for label, games in VERDICTS["legacy"]["show_result_battles"].items():
        for k, g in ((1, "game1"), (2, "game2")):
            want = games[g]
            rows = legacy_rows(label, k)
            assert len(rows) == want["weight"]
            if want["weight"]:  # model_a is the baseline, model_b the model
                assert rows[0] == {"model_b": 1.0, "model_a": 0.0, "tie": 0.5}[want["winner"]]


def test_missing_verdict_drops_what_each_version_drops():
    assert main_rows(None, "B>A") is None  # main: the whole question
    assert legacy_rows(None, 1) == [] and legacy_rows("A>B", 2) == [1.0]  # legacy: that game only (game 2: A is the model)


def test_legacy_config():
    cfg = load_judge_config(LEGACY_CFG)
    assert cfg.version == "legacy" and cfg.attempts == 2 and cfg.max_tokens == 256
    msg = cfg.user_message("Q?", "first", "second")
    assert msg.index("first") < msg.index("second") and "Q?" in msg
    card = cfg.card()
    assert card["sha256"]["system_prompt"] == sha256(cfg.system_prompt)
    assert card["known"]["system_prompt"] is None  # our own prompt, not Arena-Hard's


def test_main_config_reads_the_system_prompt_from_judge_utils_without_running_it():
    cfg = load_judge_config(MAIN_CFG)
    assert cfg.version == "main" and cfg.patterns[1] == r"\[([AB<>=]+)\]"
    assert cfg.system_prompt.startswith("You compare two answers")
    assert cfg.system_for("creative_writing").startswith("You compare two stories")
    assert cfg.system_for("unknown-category") == cfg.system_prompt
    assert "[ANSWER B]\nsecond" in cfg.user_message("Q?", "first", "second")


def test_system_file_overrides(tmp_path):
    f = tmp_path / "sys.txt"
    f.write_text("Judge. End with [[A=B]] or similar.")
    assert load_judge_config(MAIN_CFG, f).system_prompt == f.read_text()


@pytest.mark.parametrize("text", ["just: text\n", "prompt_template: 3\n", ": : :\n  - ["])
def test_bad_configs_are_one_line(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(BadInput):
        load_judge_config(p)


def test_main_config_without_judge_utils(tmp_path):
    p = tmp_path / "config" / "x.yaml"
    p.parent.mkdir()
    p.write_text(MAIN_CFG.read_text())
    with pytest.raises(BadInput, match="judge-system-file"):
        load_judge_config(p)


def _endpoint(url, **kw):
    return Endpoint(url=url, model="scripted", timeout=kw.pop("timeout", 5.0), sleep=lambda s: None, **kw)


def test_game_request_carries_the_config_settings():
    cfg = load_judge_config(MAIN_CFG)
    with ScriptedJudge() as s:
        g = judge_game(cfg, _endpoint(s.url), "Q?", "a much longer answer than the other one is", "short")
    assert g == {**g, "label": "A>>B", "error": None, "calls": 1}
    body = s.requests[0]
    assert set(body) == {"model", "messages", "temperature", "max_tokens"}
    assert (body["temperature"], body["max_tokens"]) == (0.0, 256)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_retries_then_succeeds():
    calls = {"n": 0}

    def flaky(a, b, body):
        calls["n"] += 1
        return 500 if calls["n"] < 3 else "[[A=B]]"

    slept = []
    with ScriptedJudge(flaky) as s:
        ep = Endpoint(url=s.url, model="m", retries=3, backoff=1.0, sleep=slept.append)
        g = judge_game(load_judge_config(MAIN_CFG), ep, "Q", "x", "y")
    assert (g["label"], g["error"], g["calls"]) == ("A=B", None, 3)
    assert len(slept) == 2 and slept[1] > slept[0] >= 1.0  # exponential backoff


@pytest.mark.parametrize("marker,needle", [("#500", "HTTP 500"), ("#malformed", "malformed"), ("#slow", "cannot reach")])
def test_failures_are_recorded_after_retries(marker, needle):
    with ScriptedJudge() as s:
        g = judge_game(load_judge_config(MAIN_CFG), _endpoint(s.url, retries=1, timeout=0.3), "Q", marker, "y")
        assert len(s.requests) == 2  # one retry
    assert g["label"] is None and needle in g["error"]


def test_no_verdict_is_an_answer_not_a_failure():
    with ScriptedJudge() as s:
        g = judge_game(load_judge_config(MAIN_CFG), _endpoint(s.url), "Q", "#garbage", "y")
    assert g["label"] is None and g["error"] is None and g["judgment"] == "I cannot decide."


def test_legacy_asks_again_once_when_no_verdict():
    replies = iter(["Thinking about it...", "Done. [[B>A]]"])
    with ScriptedJudge(lambda a, b, body: next(replies)) as s:
        g = judge_game(load_judge_config(LEGACY_CFG), _endpoint(s.url), "Q", "x", "y")
    assert g["label"] == "B>A" and g["calls"] == 2
    assert [m["role"] for m in s.requests[1]["messages"]] == ["system", "user", "assistant", "user"]
    assert g["judgment"] == "\nThinking about it...\nDone. [[B>A]]"  # every attempt joined, as legacy does


def test_bad_endpoint_settings():
    with pytest.raises(BadInput):
        Endpoint(url="localhost:8000", model="m")
    with pytest.raises(BadInput):
        Endpoint(url="http://127.0.0.1:9/v1", model="")
