"""Published presets: every shipped one loads and validates, `--preset` sets a run's settings (options given
win) and is recorded in the card, a bad preset is one line and exit 2, `presets` lists them."""

from __future__ import annotations

import json

import pytest

from mdlm_probe.adapters import describe_checkpoint
from mdlm_probe.tasks.benchmarks import benchmark_names
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.tasks.presets import PRESET_DIR, SAMPLER_FIELDS, apply_preset, get_preset, load_presets, preset_names
from mdlm_probe.decoding import SamplerConfig, resolve_sampler
from mdlm_probe.runs.shift import ShiftGrid, run_shift

PRESET = "llada-8b-instruct-gsm8k"  # published with confidence_eos_eot_inf on, which tiny-ce's sidecar leaves off
SMALL = ["--gen-length", "16", "--steps", "16", "--block-length", "16", "--batch-size", "2"]


def write_gsm8k(path, n=3):
    rows = [{"question": f"Ann has {i} pens and buys 2 more. How many pens?", "answer": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_shipped_preset_loads_validates_and_cites_its_sources():
    presets = load_presets()
    assert len(presets) == len(list(PRESET_DIR.glob("*.json"))) >= 20
    for name, p in presets.items():
        assert p.name == name and p.model and p.benchmark in benchmark_names()
        assert set(p.sources) == set(p.settings)  # each value names where it was published
        for k, v in p.settings.items():
            src = p.sources[k]
            assert src.startswith("not published") if v is None else ("@" in src and len(src) > 50), (name, k)
        score = p.score["value"]
        assert (isinstance(score, float) and "@" in p.score["source"]) or \
            (score is None and p.score["source"].startswith(("not published", "not recorded"))), name
        for k in ("gen_length", "steps", "block_length"):
            assert p.settings[k] is not None, (name, k)
        resolve_sampler(apply_preset(name, None)).validate()  # the preset alone is a valid sampler
        assert set(p.sampler) <= SAMPLER_FIELDS and not {"num_fewshot", "chat", "lm_eval_task"} & set(p.sampler)
    # what issue 26 asks for: LLaDA Instruct/Base/1.5, Dream Instruct/Base and Fast-dLLM, on the four benchmarks
    by_model = {}
    for p in presets.values():
        by_model.setdefault(p.model, set()).add(p.benchmark)
    assert by_model["GSAI-ML/LLaDA-8B-Instruct"] == {"gsm8k", "humaneval", "mbpp", "gpqa"}
    assert by_model["GSAI-ML/LLaDA-1.5"] == {"gsm8k", "humaneval", "mbpp", "gpqa"}
    assert by_model["GSAI-ML/LLaDA-8B-Base"] == {"gsm8k", "humaneval", "mbpp"}  # its GPQA is a likelihood task
    assert by_model["Dream-org/Dream-v0-Instruct-7B"] == by_model["Dream-org/Dream-v0-Base-7B"] == {"gsm8k", "humaneval", "mbpp"}
    assert sum(n.startswith("fast-dllm-") for n in presets) >= 6


def test_dream_presets_use_dreams_step_plan():
    for name in preset_names():
        p = get_preset(name)
        if p.model.startswith("Dream-org/"):
            assert p.sampler["schedule"] == "dream" and p.sampler["block_length"] == p.sampler["gen_length"]
            assert p.sampler["remasking"] == "entropy" and p.sampler["top_p"] in (0.9, 0.95), name


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_runs_and_is_recorded_in_the_card(tmp_path, name):
    """Each preset decodes (here at a tiny size on the shipped checkpoint) with its published settings, and
    the run's config records the preset, the settings it set and the options that overrode it."""
    p, small = get_preset(name), {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 1}
    run_eval("tiny-ce", "synthetic", tmp_path / "run", sampler_overrides=small, limit=1, preset=name)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["card"]["preset"] == name and cfg["card"]["overrides"] == small
    ran = {**SamplerConfig.ADDED_LATER, **cfg["sampler"]}
    for k, v in p.sampler.items():
        assert ran[k] == (small[k] if k in small else v), (k, ran[k], v)
    if p.num_fewshot is not None:
        assert cfg["num_fewshot"] == p.num_fewshot


def test_options_given_win_over_the_preset():
    merged = apply_preset(PRESET, {"gen_length": 16, "steps": None, "threshold": None})
    assert merged["gen_length"] == 16 and merged["steps"] == 512 and merged["confidence_eos_eot_inf"] is True
    assert "threshold" not in merged  # an option not given does not erase anything


def test_a_bad_preset_is_refused_at_load(tmp_path):
    good = json.loads((PRESET_DIR / f"{PRESET}.json").read_text())
    bad = dict(good, settings={**good["settings"], "block_length": {"value": 7, "source": "x@y"}})
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(BadInput, match="invalid sampler settings"):
        load_presets(tmp_path)
    unsourced = dict(good, settings={**good["settings"], "steps": {"value": 512}})
    (tmp_path / "bad.json").write_text(json.dumps(unsourced))
    with pytest.raises(BadInput, match="needs a value and a source"):
        load_presets(tmp_path / ".")  # another path: not the cached result
    with pytest.raises(BadInput, match="unknown preset 'nope'; expected one of .*" + PRESET):
        get_preset("nope")
    unmarked = dict(good, settings={**good["settings"], "steps": {"value": None, "source": "x@y somewhere"}})
    unscored = dict(good, score={**good["score"], "value": None})
    for folder, bad, msg in (("a", unmarked, "a null value goes"), ("b", unscored, "a null score goes")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(BadInput, match=msg + " with a source 'not published ...'"):
            load_presets(tmp_path / folder)


def test_eval_with_a_preset_records_it_in_the_card(tmp_path, cli, capsys):
    data, out = write_gsm8k(tmp_path / "test.jsonl"), tmp_path / "run"
    side = resolve_sampler(None, describe_checkpoint("tiny-ce"))
    assert side.confidence_eos_eot_inf is False  # so the run's True below comes from the preset
    code = cli("eval", "gsm8k", "--preset", PRESET, "--ckpt", "tiny-ce", "--data-file", str(data), "--limit", "2",
               "--num-fewshot", "0", "--out", str(out), "--no-progress", *SMALL)
    assert code == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["card"]["preset"] == PRESET and cfg["ckpt"] == "tiny-ce" and cfg["num_fewshot"] == 0
    assert cfg["card"]["overrides"] == {"gen_length": 16, "steps": 16, "block_length": 16, "batch_size": 2}
    s = cfg["sampler"]
    assert (s["gen_length"], s["steps"], s["block_length"]) == (16, 16, 16)  # the command line wins
    assert s["confidence_eos_eot_inf"] is True and s["remasking"] == "low_confidence"  # the preset over the sidecar
    assert json.loads((out / "summary.json").read_text())["n"] == 2


def test_shift_with_a_preset_records_it_in_the_card(tmp_path):
    out = tmp_path / "shift"
    sampler = {"gen_length": 16, "steps": 8, "block_length": 16, "batch_size": 2}
    run_shift(["tiny-random"], out, ShiftGrid(modes=["delete"], fractions=[0.0, 0.1], ats=[0.5]), limit=1,
              benchmark="gsm8k", data_file=write_gsm8k(tmp_path / "test.jsonl"), num_fewshot=0, sampler=sampler,
              preset=PRESET)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["card"]["preset"] == PRESET and cfg["card"]["overrides"] == sampler
    assert cfg["checkpoints"][0]["sampler"]["confidence_eos_eot_inf"] is True


@pytest.mark.parametrize("args, msg", [
    (["eval", "gsm8k", "--preset", "nope"], "unknown preset 'nope'"),
    (["eval", "mbpp", "--preset", PRESET], f"--preset {PRESET} was published for gsm8k, not mbpp"),
    (["shift", "--preset", "nope"], "unknown preset 'nope'"),
])
def test_a_bad_preset_on_the_command_line_is_one_line_and_exit_2(cli, capsys, args, msg):
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err


def test_presets_lists_every_preset_with_its_score(cli, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one row per preset, nothing folded
    assert cli("presets") == 0
    text = capsys.readouterr().out
    for name in preset_names():
        p = get_preset(name)
        assert name in text and p.model in text and (str(p.score["value"]) if p.score["value"] is not None
                                                      else p.score["source"][:12]) in text
