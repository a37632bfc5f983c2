"""`eval arena-hard`, `shift --benchmark arena-hard` and `judge` end to end on the shipped tiny checkpoint, with the
scripted judge server (tests/helpers/arena_server.py) on 127.0.0.1: the order swap, the cache, failures kept and
retried, the paired clean/shifted statistic, and bad input as one line with exit 2 and nothing lost.
The tiny model's answers are noise: these runs check the plumbing, not any quality."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from arena_server import ScriptedJudge, answers, by_length
from mdlm_probe.core.records import read_objects
from mdlm_probe.runs.arena import read_answer_file, read_summaries
from mdlm_probe.tasks.arena_judge import load_judge_config

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "arena_hard"
QUESTIONS, BASELINE = FIX / "question.jsonl", FIX / "scripted-baseline.jsonl"
MAIN_CFG = FIX / "judge_main" / "config" / "arena-hard-v0.1.yaml"
SIZES = ["--gen-length", "16", "--block-length", "16", "--steps", "16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from mdlm_probe.cli import main
    root = tmp_path_factory.mktemp("arena")
    assert main(["eval", "arena-hard", "--ckpt", "tiny-ce", "--data-file", str(QUESTIONS), "--out",
                 str(root / "eval"), *SIZES, "--no-progress"]) == 0
    assert main(["shift", "--ckpt", "tiny-ce", "--benchmark", "arena-hard", "--data-file", str(QUESTIONS), "--chat",
                 "--mode", "displace", "--fractions", "0,0.25", "--out", str(root / "shift"), *SIZES]) == 0
    return root


def judge_args(run, url, baseline=BASELINE, *extra):
    return ["judge", str(run), "--baseline", str(baseline), "--judge-config", str(MAIN_CFG), "--judge-url", url,
            "--judge-model", "scripted", "--no-progress", "--backoff", "0", "--retries", "1", "--timeout", "10", *extra]


def cache_lines(run):
    return read_objects(run / "arena" / "judgments.jsonl", ("key",))[0]


def test_eval_writes_records_and_model_answers(runs):
    recs = read_objects(runs / "eval" / "samples.jsonl", ("id",))[0]
    assert len(recs) == 4 and all(r["correct"] is None and r["question"] for r in recs)
    exported = read_answer_file(runs / "eval" / "model_answer" / "tiny-ce.jsonl")
    assert exported == {r["id"].split("/", 1)[1]: r["text"] for r in recs}
    line = json.loads((runs / "eval" / "model_answer" / "tiny-ce.jsonl").read_text().splitlines()[0])
    assert line["choices"][0]["turns"][0]["content"] == line["messages"][-1]["content"]["answer"]  # both layouts


def test_judge_both_orders_then_cache(runs, tmp_path, cli, capsys):
    run = tmp_path / "eval"
    shutil.copytree(runs / "eval", run)
    mine = read_answer_file(run / "model_answer" / "tiny-ce.jsonl")
    # a baseline that loses, ties, and wins weakly and strongly under the length rule
    base = dict(zip(sorted(mine), ["a", mine["q01"], mine["q02"] + "x" * 30, mine["q03"] + "x" * 5]))
    baseline = tmp_path / "scripted-baseline.jsonl"
    baseline.write_text("".join(json.dumps({"uid": u, "messages": [{"role": "assistant", "content": {"answer": t}}]})
                                + "\n" for u, t in base.items()))
    with ScriptedJudge() as s:
        assert cli(*judge_args(run, s.url, baseline)) == 0
        first = len(s.requests)
        assert cli(*judge_args(run, s.url, baseline)) == 0  # everything is in the cache
        assert len(s.requests) == first == 8
    asked = sorted(answers(body["messages"][1]["content"]) for body in s.requests[:first])
    # per question one game with the baseline as A and one with the model as A
    assert asked == sorted([(base[u], mine[u]) for u in mine] + [(mine[u], base[u]) for u in mine])
    summary = read_summaries(run)["scripted-baseline"]
    m = summary["models"]["tiny-ce"]
    want = [x for uid in base for x in _rows(base[uid], mine[uid])]
    assert m["main_plain"]["n"] == len(want)
    assert 0 < m["legacy_bt"]["win_rate"] < 1
    assert m["legacy_bt"]["win_rate"] == pytest.approx(_legacy(base, mine), abs=1e-12)
    assert m["main_plain"]["win_rate"] == pytest.approx(sum(want) / len(want), abs=0.1)  # a bootstrap mean
    assert summary["judge"]["prompts"]["sha256"]["template"]
    assert "8 games, 0 in the cache, 8 to ask" in capsys.readouterr().err


def _verdict(a, b):
    return by_length(a, b, {}).split("[[")[1].split("]]")[0]


def _rows(base, mine):
    from mdlm_probe.tasks.arena_judge import main_rows
    return main_rows(_verdict(base, mine), _verdict(mine, base))


def _legacy(base, mine):
    from mdlm_probe.tasks.arena_judge import legacy_rows
    rows = [x for u in base for x in legacy_rows(_verdict(base[u], mine[u]), 1) + legacy_rows(_verdict(mine[u], base[u]), 2)]
    return sum(rows) / len(rows)


def test_failures_are_kept_then_only_they_are_retried(runs, tmp_path, cli, capsys):
    run = tmp_path / "eval"
    shutil.copytree(runs / "eval", run)
    down = {"on": True}

    def script(a, b, body):  # game 2 fails while `down`
        return 500 if down["on"] and a not in read_answer_file(BASELINE).values() else by_length(a, b, body)

    with ScriptedJudge(script) as s:
        assert cli(*judge_args(run, s.url)) == 0
        lines = cache_lines(run)
        assert sum(j["error"] is not None for j in lines) == 4 and all(j["label"] is None for j in lines if j["error"])
        assert read_summaries(run)["scripted-baseline"]["models"]["tiny-ce"]["failed"] == 4
        n = len(s.requests)
        down["on"] = False
        assert cli(*judge_args(run, s.url)) == 0
        assert len(s.requests) - n == 4  # only the failed games were asked again
    m = read_summaries(run)["scripted-baseline"]["models"]["tiny-ce"]
    assert (m["failed"], m["judged"]) == (0, 8)
    assert "rerun the same command" in capsys.readouterr().err


def test_shift_run_judged_against_baseline_and_clean(runs, tmp_path, cli):
    run = tmp_path / "shift"
    shutil.copytree(runs / "shift", run)
    with ScriptedJudge() as s:
        assert cli(*judge_args(run, s.url)) == 0
        assert cli(*judge_args(run, s.url, "clean")) == 0
    sums = read_summaries(run)
    vs_base, vs_clean = sums["scripted-baseline"], sums["clean"]
    assert set(vs_base["models"]) == {"tiny-ce@clean", "tiny-ce@displace-p0.25-at0.5"}
    (pair,) = vs_base["pairs"]
    assert pair["n"] == 4 and pair["diff"] == pytest.approx(pair["shifted_mean"] - pair["clean_mean"])
    assert pair["lower"] <= pair["diff"] <= pair["upper"]
    assert list(vs_clean["models"]) == ["tiny-ce@displace-p0.25-at0.5"]
    assert vs_clean["models"]["tiny-ce@displace-p0.25-at0.5"]["baseline"] == "tiny-ce@clean"
    assert (run / "arena" / "vs_clean" / "model_judgment" / "scripted").is_dir()


def test_another_run_as_baseline(runs, tmp_path, cli):
    run = tmp_path / "shift"
    shutil.copytree(runs / "shift", run)
    with ScriptedJudge() as s:
        assert cli(*judge_args(run, s.url, runs / "eval")) == 0
    assert "tiny-ce" in read_summaries(run)


# ----------------------------------------------------------------------------------------- bad input
def test_wrong_question_file_is_one_line(tmp_path, cli, capsys):
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"question": "x", "answer": "#### 1"}) + "\n")
    assert cli("eval", "arena-hard", "--ckpt", "tiny-ce", "--data-file", str(bad), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "uid" in err and len(err.strip().splitlines()) == 1


def test_baseline_missing_questions_asks_nothing(runs, tmp_path, cli, capsys):
    short = tmp_path / "short.jsonl"
    short.write_text("".join(BASELINE.read_text().splitlines(keepends=True)[:2]))
    with ScriptedJudge() as s:
        assert cli(*judge_args(runs / "eval", s.url, short)) == 2
        assert s.requests == []
    err = capsys.readouterr().err
    assert "has no answer to 2 of" in err and len(err.strip().splitlines()) == 1


def test_judge_that_does_not_answer_loses_nothing(runs, tmp_path, cli, capsys):
    run = tmp_path / "eval"
    shutil.copytree(runs / "eval", run)
    with ScriptedJudge() as s:
        assert cli(*judge_args(run, s.url, BASELINE, "--limit", "2")) == 0
        url = s.url
    before = cache_lines(run)
    assert len(before) == 4
    capsys.readouterr()
    assert cli(*judge_args(run, url)) == 2  # the server is gone
    err = capsys.readouterr().err
    assert "does not answer" in err and len(err.strip().splitlines()) == 2  # the plan line, then the error
    assert cache_lines(run) == before


def test_judge_that_stops_midway_saves_what_it_made(runs, tmp_path, cli, capsys, monkeypatch):
    import mdlm_probe.runs.arena as arena
    monkeypatch.setattr(arena, "STALL", 2)
    run = tmp_path / "shift"
    shutil.copytree(runs / "shift", run)
    s = ScriptedJudge().start()
    seen = {"n": 0}

    def die_after_four(a, b, body):
        seen["n"] += 1
        if seen["n"] == 4:  # stop serving, and listening, after this reply
            threading.Thread(target=lambda: (s.httpd.shutdown(), s.httpd.socket.close())).start()
        return by_length(a, b, body)

    s.script = die_after_four
    rc = cli(*judge_args(run, s.url, BASELINE, "--parallel", "1"))
    assert rc == 2 and "stopped answering" in capsys.readouterr().err
    ok = [j for j in cache_lines(run) if j["error"] is None]
    assert len(ok) == 4  # every verdict made before it stopped is on disk


def test_bad_config_and_method(runs, cli, capsys):
    assert cli("judge", str(runs / "eval"), "--baseline", str(BASELINE), "--judge-config", str(QUESTIONS),
               "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m") == 2
    assert cli(*judge_args(runs / "eval", "http://127.0.0.1:9/v1", BASELINE, "--method", "elo")) == 2
    assert load_judge_config(MAIN_CFG).version == "main"


def test_report_shows_the_open_ended_section(runs, tmp_path, cli):
    from mdlm_probe.report import build_report
    run = tmp_path / "shift"
    shutil.copytree(runs / "shift", run)
    with ScriptedJudge() as s:
        assert cli(*judge_args(run, s.url)) == 0
    html = build_report([run], tmp_path / "rep", generated="fixed").read_text()
    section = html[html.index('<section id="open_ended">'):]
    section = section[:section.index("</section>")]
    assert "tiny-ce@displace-p0.25-at0.5" in section and "scripted-baseline" in section
    summary = read_summaries(run)["scripted-baseline"]
    assert summary["judge"]["prompts"]["sha256"]["system_prompt"] in section  # the judge card's prompt hash
    if summary["pairs"][0]["changed"]:  # a changed verdict is shown as a clean/shifted diff
        assert 'class="diff"' in section
    assert (tmp_path / "rep" / "arena_win_rates.csv").is_file()
