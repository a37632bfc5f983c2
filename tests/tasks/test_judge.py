"""The pairwise judge client against a loopback OpenAI-compatible server started here (127.0.0.1 only)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from chat_server import ChatServer
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.judge import Judge, judge_run, read_judged
from mdlm_probe.core.records import RecordWriter, read_records
from mdlm_probe.runs.shift import summarize


def _verdict_for(user: str, behaviour: str) -> str:
    a = user.split("[Response A]\n")[1].split("\n\n[Response B]")[0]
    if behaviour == "prefer-good":  # a sensible judge: the response with "good" in it wins
        return "[[A]]" if "good" in a else "[[B]]"
    if behaviour == "always-a":  # a position-biased judge
        return "The first one. [[A]]"
    if behaviour == "tie":
        return "[[C]]"
    if behaviour == "both":  # contradicts itself
        return "[[A]] ... on reflection [[B]]"
    return "Both responses have merit."  # garbage


def _reply(behaviour: str, body: dict) -> str | int | bytes:
    if behaviour == "http500":
        return 500
    if behaviour == "slow":
        time.sleep(1.0)
    if behaviour == "not-json":
        return b"<html>oops</html>"
    if behaviour == "no-choices":
        return json.dumps({"error": "model not found"}).encode()
    return _verdict_for(body["messages"][-1]["content"], behaviour)


def server(behaviour="prefer-good") -> ChatServer:
    """The scripted loopback chat server (tests/helpers/chat_server.py); `behaviour` picks its answers."""
    return ChatServer(lambda body: _reply(behaviour, body))


def judge(url, **kw):
    return Judge(url=url, model="judge-1", timeout=kw.pop("timeout", 5.0), **kw)


def test_good_answers_both_orders():
    with server("prefer-good") as s:
        r = judge(s.url).compare("Q?", clean="a bad answer", shifted="a good answer")
        assert r == {"verdicts": ["B", "A"], "score": 1.0, "judge_error": None, "identical": False}
        r = judge(s.url).compare("Q?", clean="a good answer", shifted="a bad answer")
        assert r["score"] == 0.0
        assert len(s.requests) == 4  # two orders per pair
        path, body = s.paths[0], s.requests[0]
        assert path == "/v1/chat/completions" and body["model"] == "judge-1" and body["temperature"] == 0.0
        assert "a bad answer" in body["messages"][-1]["content"]
    with server("always-a") as s:  # position bias cancels out over the two orders
        assert judge(s.url).compare("Q?", "x", "y")["score"] == 0.5
    with server("tie") as s:
        assert judge(s.url + "/chat/completions").compare("Q?", "x", "y")["verdicts"] == ["C", "C"]


def test_identical_texts_are_a_tie_without_asking():
    with server("prefer-good") as s:
        r = judge(s.url).compare("Q?", "same", "same")
        assert r["score"] == 0.5 and r["identical"] and not s.requests


@pytest.mark.parametrize("behaviour,needle", [("garbage", "unparseable verdict"), ("both", "unparseable verdict"),
                                              ("not-json", "malformed response"), ("no-choices", "malformed response"),
                                              ("http500", "HTTP 500")])
def test_bad_answers_are_recorded_errors(behaviour, needle):
    with server(behaviour) as s:
        r = judge(s.url).compare("Q?", "x", "y")
    assert r["score"] is None and needle in r["judge_error"]


def test_down_or_slow_server_is_a_recorded_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    r = judge(f"http://127.0.0.1:{port}/v1").compare("Q?", "x", "y")
    assert r["score"] is None and "cannot reach" in r["judge_error"]
    with server("slow") as s:
        r = judge(s.url, timeout=0.3).compare("Q?", "x", "y")
    assert r["score"] is None and "cannot reach" in r["judge_error"]


def test_bad_settings():
    with pytest.raises(BadInput):
        Judge(url="localhost:8000", model="m")
    with pytest.raises(BadInput):
        Judge(url="http://localhost:8000", model="")


def _write_run(d):
    with RecordWriter(d / "shift.jsonl") as w:
        for i, (ct, st) in enumerate([("a bad answer", "a good answer"), ("a good one", "a bad one"), ("same", "same")]):
            w.write({"id": f"synthetic/{i}@clean", "ckpt": "m", "prompt": "Q?", "text": ct, "correct": True,
                     "output_ids": [1], "intervention": None})
            w.write({"id": f"synthetic/{i}@insert-p0.1-at0.5", "ckpt": "m", "prompt": "Q?", "text": st,
                     "correct": True, "output_ids": [2],
                     "intervention": {"mode": "insert", "fraction": 0.1, "at": 0.5, "at_step": None, "fired": True,
                                      "points": [0], "clean_id": f"synthetic/{i}@clean"}})


def test_judge_run_records_errors_then_retries(tmp_path):
    _write_run(tmp_path)
    with server("garbage") as s:
        judged = judge_run(tmp_path, judge(s.url))
        assert len(s.requests) == 4  # the identical pair needs no request
    assert [judged[("m", f"synthetic/{i}@insert-p0.1-at0.5")]["judge_error"] is not None for i in range(3)] == [
        True, True, False]
    (row,) = summarize(read_records(tmp_path / "shift.jsonl")[0],
                       judged=judged)
    assert row["judge_n"] == 1 and row["judge_errors"] == 2 and row["win_rate"] == 0.5
    with server("prefer-good") as s:
        judged = judge_run(tmp_path, judge(s.url))
        assert len(s.requests) == 4  # only the two failed pairs are asked again
    again = read_judged(tmp_path)
    assert [again[("m", f"synthetic/{i}@insert-p0.1-at0.5")]["score"] for i in range(3)] == [1.0, 0.0, 0.5]
    with server("prefer-good") as s:
        judge_run(tmp_path, judge(s.url))
        assert not s.requests  # all judged: nothing to do
