"""Published presets: every shipped one loads and validates, `--preset` sets a run's settings (options given
win) and is recorded in the card, a bad preset is one line and exit 2, `presets` lists them."""

from __future__ import annotations

import json

import pytest

from mdlm_probe.adapters import describe_checkpoint
from mdlm_probe.errors import BadInput
from mdlm_probe.presets import PRESET_DIR, SAMPLER_FIELDS, apply_preset, get_preset, load_presets, preset_names
from mdlm_probe.sampler import resolve_sampler
from mdlm_probe.shift import ShiftGrid, run_shift

PRESET = "llada-8b-instruct-gsm8k"  # published with confidence_eos_eot_inf on, which tiny-ce's sidecar leaves off
SMALL = ["--gen-length", "16", "--steps", "16", "--block-length", "16", "--batch-size", "2"]


def write_gsm8k(path, n=3):
    rows = [{"question": f"Ann has {i} pens and buys 2 more. How many pens?", "answer": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_shipped_preset_loads_validates_and_cites_its_sources():
    presets = load_presets()
    assert len(presets) == len(list(PRESET_DIR.glob("*.json"))) >= 3
    for name, p in presets.items():
        assert p.name == name and p.model and p.benchmark == "gsm8k"
        assert set(p.sources) == set(p.settings)  # each value names where it was published
        for k, v in p.settings.items():
            src = p.sources[k]
            assert src.startswith("not published") if v is None else ("@" in src and len(src) > 50), (name, k)
        assert isinstance(p.score["value"], float) and p.score["source"]
        for k in ("gen_length", "steps", "block_length"):
            assert p.settings[k] is not None, (name, k)
        resolve_sampler(apply_preset(name, None)).validate()  # the preset alone is a valid sampler
        assert set(p.sampler) <= SAMPLER_FIELDS and not {"num_fewshot", "chat"} & set(p.sampler)


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
        assert name in text and p.model in text and str(p.score["value"]) in text
