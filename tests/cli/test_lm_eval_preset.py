"""`mdlm-probe lm-eval --preset NAME`: the preset fills the lm-eval arguments left out (model_args, task,
few-shot count, chat template), its sampler settings reach the decode under the model_args given, and the
results' config carries the preset and the run card. Run on the local fixture task (tests/fixtures/lm_eval_task)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("lm_eval")

from mdlm_probe.core.exceptions import BadInput  # noqa: E402
from mdlm_probe.cli.lm_eval import model_args_preset, with_preset_args  # noqa: E402
from mdlm_probe.runs.lm_eval_model import MDLMProbeLM  # noqa: E402
from mdlm_probe.tasks.presets import get_preset  # noqa: E402
from preset_variants import without_protocol  # noqa: E402

TASKS = Path(__file__).resolve().parents[1] / "fixtures" / "lm_eval_task"
# A shipped preset whose settings all differ from tiny-random's sidecar (Dream's plan, T = 0.2, top-p 0.95),
# published without the chat template (tiny-random has none) and 0-shot (the fixture has no few-shot split).
PRESET = "dream-v0-base-7b-humaneval"
SMALL = "gen_length=8,steps=8,block_length=8"


@pytest.fixture
def no_default_tasks(monkeypatch):
    """lm-eval's CLI indexes its thousands of built-in tasks first (a minute on a busy CPU); skip that."""
    import lm_eval.tasks

    real = lm_eval.tasks.TaskManager
    monkeypatch.setattr(lm_eval.tasks, "TaskManager", lambda *a, **k: real(*a, **{**k, "include_defaults": False}))


@pytest.fixture
def plumbing(monkeypatch):
    """These tests are about how a preset's settings reach lm-eval, not about its protocol (which lm-eval cannot
    reproduce for these presets: tests/tasks/test_presets.py checks the refusal): blank the protocol fields."""
    for name in (PRESET, "fast-dllm-llada-8b-instruct-gsm8k"):
        without_protocol(monkeypatch, name)


def test_the_preset_fills_only_what_the_arguments_leave_out(plumbing):
    p = get_preset("fast-dllm-llada-8b-instruct-gsm8k")
    # Fast-dLLM put the 5 shots in one user turn: lm-eval's multi-turn default with the template is turned off
    assert with_preset_args([], p.name) == [
        "--model_args", f"pretrained={p.model},preset={p.name}", "--tasks", "gsm8k", "--num_fewshot", "5",
        "--apply_chat_template", "--fewshot_as_multiturn", "false"]
    given = ["--model_args=pretrained=tiny-ce,steps=4", "--tasks", "mine", "--num_fewshot", "0", "--apply_chat_template",
             "--fewshot_as_multiturn"]
    assert with_preset_args(given, p.name) == [
        "--model_args", f"pretrained=tiny-ce,steps=4,preset={p.name}", "--tasks", "mine", "--num_fewshot", "0",
        "--apply_chat_template", "--fewshot_as_multiturn"]
    # preset= in --model_args (no --preset) applies the whole preset too, and stays where it is
    assert with_preset_args(["--model_args", f"pretrained=tiny-ce,preset={p.name}"], p.name, in_model_args=True) == [
        "--model_args", f"pretrained=tiny-ce,preset={p.name}", "--tasks", "gsm8k", "--num_fewshot", "5",
        "--apply_chat_template", "--fewshot_as_multiturn", "false"]
    assert model_args_preset(["--model_args", f"pretrained=tiny-ce,preset={p.name},steps=4"]) == p.name
    assert model_args_preset(["--model_args", "pretrained=tiny-ce"]) is None
    base = get_preset("llada-8b-base-gsm8k")  # no chat template; 5 shots, as lm-eval 0.4.8's gsm8k fixes them
    assert with_preset_args(["--limit", "2"], base.name) == [
        "--limit", "2", "--model_args", f"pretrained={base.model},preset={base.name}", "--tasks", "gsm8k",
        "--num_fewshot", "5"]


@pytest.mark.parametrize("argv, preset, msg", [
    (["--model", "hf"], PRESET, "--preset needs --model mdlm_probe, not 'hf'"),
    (["--model_args", f"preset={PRESET}"], PRESET, "give the preset once"),
    ([], "llada-8b-instruct-gsm8k", "published outside lm-eval (no lm-eval task); give --tasks"),
    ([], "nope", "unknown preset 'nope'"),
])
def test_a_preset_that_cannot_apply_is_refused(argv, preset, msg):
    with pytest.raises(BadInput, match=msg.replace("(", r"\(").replace(")", r"\)")):
        with_preset_args(argv, preset)


def test_model_args_win_over_the_preset_and_the_preset_over_the_task(tiny_random, plumbing):
    lm = MDLMProbeLM(pretrained=tiny_random, preset=PRESET, gen_length=8, steps=8, block_length=8)
    cfg = lm.base
    assert (cfg.gen_length, cfg.steps, cfg.block_length) == (8, 8, 8)  # given
    assert (cfg.schedule, cfg.remasking, cfg.temperature, cfg.top_p) == ("dream", "entropy", 0.2, 0.95)  # preset
    info = lm.get_model_info()
    assert info["mdlm_probe_preset"] == PRESET and info["mdlm_probe_card"]["preset"] == PRESET
    assert info["mdlm_probe_card"]["overrides"] == {"gen_length": 8, "steps": 8, "block_length": 8}
    plain = MDLMProbeLM(pretrained=tiny_random, gen_length=8, steps=8, block_length=8).base
    assert (plain.schedule, plain.temperature) == ("llada", 0.0)  # so the values above came from the preset


def test_cli_lm_eval_with_a_preset_on_a_local_task(cli, tmp_path, no_default_tasks, tiny_random, capsys, plumbing):
    code = cli("lm-eval", "--preset", PRESET, "--", "--model_args", f"pretrained=tiny-random,{SMALL}",
               "--tasks", "mdlm_probe_synth_gen", "--include_path", str(TASKS), "--device", "cpu", "--limit", "2",
               "--log_samples", "--output_path", str(tmp_path / "out"))
    assert code == 0, capsys.readouterr().err[-2000:]
    (res,) = list((tmp_path / "out").rglob("results_*.json"))
    data = json.loads(res.read_text())
    cfg = data["config"]
    assert cfg["mdlm_probe_preset"] == PRESET and cfg["model_args"]["preset"] == PRESET
    s = cfg["mdlm_probe_sampler"]
    assert (s["gen_length"], s["schedule"], s["remasking"], s["temperature"], s["top_p"]) == (8, "dream", "entropy", 0.2, 0.95)
    card = cfg["mdlm_probe_card"]
    # lm-eval's CLI passes its own --batch_size (default 1) to the model: an override like the others
    assert card["preset"] == PRESET and card["overrides"] == {"gen_length": 8, "steps": 8, "block_length": 8,
                                                              "batch_size": 1}
    assert card["chat"] is False and data["n-shot"]["mdlm_probe_synth_gen"] == 0  # as published
    (f,) = list((tmp_path / "out").rglob("samples_mdlm_probe_synth_gen_*.jsonl"))
    samples = [json.loads(line) for line in f.read_text().splitlines()]
    direct = MDLMProbeLM(pretrained=tiny_random, preset=PRESET, gen_length=8, steps=8, block_length=8).generate_until(
        [SimpleNamespace(args=tuple(s["arguments"]["gen_args_0"].values())) for s in samples])
    assert [s["resps"][0][0] for s in samples] == direct  # decoded with the preset's settings


def test_cli_lm_eval_bad_preset_is_one_line_exit_2(cli, capsys):
    assert cli("lm-eval", "--preset", "nope", "--", "--tasks", "x") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown preset 'nope'" in err
