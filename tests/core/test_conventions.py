"""docs/conventions.md in code: checkpoint sidecar, sample record, append-and-flush records, run directories.
(The layering in docs/architecture.md is checked by tests/test_architecture.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mdlm_probe.core.checkpoints import SHIPPED_DIR, SIDECAR_KEYS, missing_sidecar_keys, read_sidecar, resolve
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import RECORD_KEYS, RecordWriter, iter_done_ids, make_record, read_records
from mdlm_probe.core.rundir import load_config, prepare_run_dir

CONVENTIONS = Path(__file__).resolve().parents[2] / "docs" / "conventions.md"


# ----------------------------------------------------------------------------------------- checkpoints
def test_sidecar_keys_follow_conventions():
    # the keys listed in the project's conventions, in their order
    text = CONVENTIONS.read_text().split("Sidecar keys:", 1)[1].split("## Run directory", 1)[0]
    listed = re.findall(r"`([a-z_]+)`", text)
    assert list(dict.fromkeys(k for k in listed if k in SIDECAR_KEYS)) == list(SIDECAR_KEYS)
    assert set(SIDECAR_KEYS) <= set(listed)
    assert missing_sidecar_keys({}) == list(SIDECAR_KEYS)
    full = {k: None for k in SIDECAR_KEYS}
    assert missing_sidecar_keys(full) == []
    del full["heldout"]
    assert missing_sidecar_keys(full) == ["heldout"]


@pytest.mark.parametrize("name", sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "config.json").is_file()))
def test_shipped_checkpoints_have_complete_sidecars(name):
    side = read_sidecar(resolve(name))
    assert side is not None and missing_sidecar_keys(side) == []
    assert side["name"] == name
    assert side["objective"] in ("ce", "ctc+ce") and side["collapse"] in ("surface", "ctc")


def test_checkpoint_names_resolve_or_fail_in_one_line(tmp_path):
    assert resolve("tiny-random") == SHIPPED_DIR / "tiny-random"
    with pytest.raises(BadInput, match="no checkpoint"):
        resolve("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="config.json"):
        resolve(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "mdlm_probe.json").write_text("{not json")
    with pytest.raises(BadInput, match="corrupt sidecar"):
        read_sidecar(resolve(str(bad)))


# ----------------------------------------------------------------------------------------- records
def test_record_keys_follow_conventions():
    table = CONVENTIONS.read_text().split("## Sample record", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)`", table, flags=re.M)
    expanded = []
    for line in table.splitlines():  # a row may name two keys: | `text_surface`, `text_ctc` |
        if line.startswith("| `"):
            expanded += re.findall(r"`([a-z_]+)`", line.split("|")[1])
    assert listed and expanded == list(RECORD_KEYS)
    rec = make_record(id="x/1", extra=5, nfe=3)
    assert list(rec)[: len(RECORD_KEYS)] == list(RECORD_KEYS) and list(rec)[-1] == "extra"
    assert rec["nfe"] == 3 and rec["prompt"] is None


def test_generated_record_has_every_key_and_one_trajectory_entry_per_position(tiny_random):
    from mdlm_probe import SamplerConfig, generate

    cfg = SamplerConfig(gen_length=8, steps=4, block_length=4)
    r = generate(tiny_random, ["Ann has 10 pens."], cfg)[0]
    rec = make_record(id="prompt/0", benchmark="prompt", ckpt="tiny-random", **r)
    assert set(RECORD_KEYS) <= set(rec)
    assert len(rec["output_ids"]) == 8
    for key in ("commit_step", "confidence", "block"):
        assert len(rec["trajectory"][key]) == 8
    assert rec["sampler"]["gen_length"] == 8 and rec["nfe"] == 4
    assert rec["text"] == rec["text_surface"]  # tiny-random's sidecar collapse is surface
    json.dumps(rec)  # one JSON object per line


def test_record_writer_truncates_a_partial_last_line_and_resumes(tmp_path):
    path = tmp_path / "samples.jsonl"
    with RecordWriter(path) as w:
        w.write(make_record(id="a/1"))
        w.write(make_record(id="a/2"))
    with open(path, "a") as fh:  # a run killed mid-write
        fh.write('{"id": "a/3", "tex')
    recs, bad = read_records(path)
    assert [r["id"] for r in recs] == ["a/1", "a/2"] and bad == 1
    with RecordWriter(path) as w:  # reopening drops the partial line
        assert iter_done_ids(path) == {"a/1", "a/2"}
        w.write(make_record(id="a/3"))
    recs, bad = read_records(path)
    assert [r["id"] for r in recs] == ["a/1", "a/2", "a/3"] and bad == 0
    assert path.read_text().endswith("}\n") and path.read_text().count("\n") == 3


def test_read_records_skips_malformed_lines_and_counts_them(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a/1"}\nnot json\n[1, 2]\n{"no_id": 1}\n\n{"id": "a/2"}\n')
    recs, bad = read_records(path)
    assert [r["id"] for r in recs] == ["a/1", "a/2"] and bad == 3
    assert read_records(tmp_path / "absent.jsonl") == ([], 0)


# ----------------------------------------------------------------------------------------- run directories
def test_run_dir_new_same_different_overwrite(tmp_path):
    out = tmp_path / "run"
    cfg = {"command": "eval", "ckpt": "tiny-random", "sampler": {"steps": 8}, "seed": 0}
    prepare_run_dir(out, cfg, outputs=("samples.jsonl",))
    saved = load_config(out)
    assert saved["command"] == "eval" and "created" in saved and "versions" in saved
    (out / "samples.jsonl").write_text('{"id": "a/1"}\n')

    # same config (volatile keys aside): resume, nothing touched
    prepare_run_dir(out, {**cfg, "versions": {"torch": "other"}}, outputs=("samples.jsonl",))
    assert load_config(out) == saved and (out / "samples.jsonl").is_file()

    # a different config: one-line BadInput naming what differs
    with pytest.raises(BadInput, match="sampler") as e:
        prepare_run_dir(out, {**cfg, "sampler": {"steps": 16}}, outputs=("samples.jsonl",))
    assert "\n" not in str(e.value) and "--overwrite" in str(e.value)
    assert (out / "samples.jsonl").is_file()

    # overwrite: outputs removed, the new config saved
    prepare_run_dir(out, {**cfg, "sampler": {"steps": 16}}, overwrite=True, outputs=("samples.jsonl",))
    assert not (out / "samples.jsonl").exists()
    assert load_config(out)["sampler"] == {"steps": 16}


def test_a_run_dir_without_results_takes_a_new_config(tmp_path):
    """An attempt that stopped at bad input left config.json (and maybe an empty record file): no run yet."""
    out = tmp_path / "run"
    cfg = {"command": "eval", "sampler": {"steps": 8}}
    prepare_run_dir(out, cfg, outputs=("samples.jsonl", "shards"))
    (out / "samples.jsonl").touch()
    (out / "shards").mkdir()
    prepare_run_dir(out, {**cfg, "sampler": {"steps": 16}}, outputs=("samples.jsonl", "shards"))
    assert load_config(out)["sampler"] == {"steps": 16}
    (out / "samples.jsonl").write_text('{"id": "a/1"}\n')  # now it holds a result: refused
    with pytest.raises(BadInput, match="different config"):
        prepare_run_dir(out, cfg, outputs=("samples.jsonl", "shards"))


def test_load_config_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not a run directory"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(BadInput, match="corrupt"):
        load_config(tmp_path)


# ----------------------------------------------------------------------------------------- CLI names
def test_sampler_options_are_sampler_config_fields():
    from dataclasses import fields

    from mdlm_probe.cli.options import SAMPLER_OPTIONS
    from mdlm_probe.decoding import SamplerConfig

    expected = ["gen_length", "steps", "block_length", "temperature", "cfg_scale", "remasking", "schedule", "top_k",
                "top_p", "alg_temp", "eps", "threshold", "confidence_dtype", "cache", "cache_refresh",
                "measure_cache_drift", "drift_every", "cache_drift_threshold", "compact", "seed",
                "batch_size", "collapse", "repair", "repair_threshold", "repair_budget", "repair_window", "repair_scope",
                "repair_every", "repair_stride"]
    assert list(SAMPLER_OPTIONS) == expected
    assert set(expected) <= {f.name for f in fields(SamplerConfig)}


def test_conventions_list_every_sampler_option_and_command():
    """The command line section names every shared sampler option and every command (docs/conventions.md)."""
    from mdlm_probe.cli.app import app
    from mdlm_probe.cli.options import SAMPLER_OPTIONS

    text = CONVENTIONS.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    listed = text.split("The sampler options carry the same names", 1)[1].split("\n- ", 1)[0]
    assert re.findall(r"--([a-z-]+)", listed) == [n.replace("_", "-") for n in SAMPLER_OPTIONS]
    commands = text.split("- Commands:", 1)[1].split("\n- ", 1)[0]
    named = set(re.findall(r"`([a-z-]+)(?: [A-Z_.]+)?`", commands))
    registered = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    assert registered <= named
    for step in ("command line", "preset", "sidecar", "adapter", "defaults", "provenance"):
        assert step in text.split("- Setting resolution:", 1)[1]
