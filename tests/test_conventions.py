"""docs/conventions.md in code: checkpoint sidecar, sample record, append-and-flush records, run directories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mdlm_probe.checkpoints import SHIPPED_DIR, SIDECAR_KEYS, missing_sidecar_keys, read_sidecar, resolve
from mdlm_probe.errors import BadInput
from mdlm_probe.records import RECORD_KEYS, RecordWriter, iter_done_ids, make_record, read_records
from mdlm_probe.rundir import load_config, prepare_run_dir

CONVENTIONS = Path(__file__).resolve().parents[1] / "docs" / "conventions.md"


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

    from mdlm_probe.cli import SAMPLER_OPTIONS
    from mdlm_probe.sampler import SamplerConfig

    expected = ["gen_length", "steps", "block_length", "temperature", "cfg_scale", "remasking", "schedule", "top_k",
                "top_p", "alg_temp", "eps", "threshold", "confidence_dtype", "cache", "cache_refresh", "seed", "batch_size",
                "collapse"]
    assert list(SAMPLER_OPTIONS) == expected
    assert set(expected) <= {f.name for f in fields(SamplerConfig)}


# ----------------------------------------------------------------------------------------- layers
PACKAGE = Path(__file__).resolve().parents[1] / "mdlm_probe"


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    import ast

    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    pkg = list(rel.parts[:-1])  # the package a relative import starts from
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names.add(mod)
            names |= {f"{mod}.{a.name}" for a in node.names}  # `from . import commands` imports a module
    return names


def test_only_the_cli_layer_imports_the_cli_layer():
    """The library never imports mdlm_probe.cli or mdlm_probe.commands (imports run downwards only)."""
    offenders = []
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(PACKAGE)
        if rel.parts[0] == "commands" or rel.as_posix() in ("cli.py", "__main__.py"):  # __main__: `python -m`
            continue
        bad = sorted(m for m in _imported_modules(f)
                     if m in ("mdlm_probe.cli", "mdlm_probe.commands") or m.startswith("mdlm_probe.commands."))
        if bad:
            offenders.append(f"{rel}: {', '.join(bad)}")
    assert not offenders, offenders


def test_the_import_reader_sees_relative_and_function_level_imports(tmp_path, monkeypatch):
    """The check above would catch `from .commands.errors import errors` inside a function (as demo.py had)."""
    import sys

    fake = tmp_path / "mdlm_probe"
    fake.mkdir()
    (fake / "lib.py").write_text("def f():\n    from .commands.errors import errors\n    from . import cli\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    got = _imported_modules(fake / "lib.py")
    assert "mdlm_probe.commands.errors" in got and "mdlm_probe.cli" in got


ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _layers() -> dict[str, int]:
    """Module (without the package prefix) -> layer number, from the table in docs/architecture.md."""
    table = ARCHITECTURE.read_text().split("| layer | modules |", 1)[1].split("\n\n", 1)[0]
    layers = {}
    for line in table.splitlines():
        m = re.match(r"\| (\d+) [a-z &]+ \| (.+) \|$", line)
        if m:
            for name in m.group(2).replace("\\_", "_").split(","):
                assert name.strip() not in layers, f"{name.strip()} listed twice"
                layers[name.strip()] = int(m.group(1))
    return layers


def _module_name(f: Path) -> str:
    rel = f.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts[:-1]) if rel.name == "__init__" and len(rel.parts) > 1 else list(rel.parts)
    return ".".join(parts)


def test_every_module_imports_only_its_layer_and_below():
    """docs/architecture.md's layer table is the rule: adapters -> sampler -> tasks -> runs -> report -> CLI."""
    layers = _layers()
    modules = {_module_name(f): f for f in sorted(PACKAGE.rglob("*.py"))}
    assert sorted(set(modules) - set(layers)) == [], "modules missing from docs/architecture.md"
    assert sorted(set(layers) - set(modules)) == [], "docs/architecture.md names modules that do not exist"
    upward = []
    for name, f in modules.items():
        for imp in _imported_modules(f):
            if not imp.startswith("mdlm_probe."):
                continue
            target = imp.removeprefix("mdlm_probe.")
            while target not in layers and "." in target:  # `from .adapters import load_model`
                target = target.rsplit(".", 1)[0]
            if target in layers and layers[target] > layers[name]:
                upward.append(f"{name} (layer {layers[name]}) imports {target} (layer {layers[target]})")
    assert not upward, upward


def test_a_command_module_imports_first_in_a_fresh_interpreter():
    """Scripts may import a command module before cli (analyses/ did): the cli <-> commands cycle must not bite."""
    import subprocess
    import sys

    code = "import mdlm_probe.commands.errors as e, mdlm_probe.commands.demo as d; print(e.errors.__name__, d.demo.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["errors", "demo"], out.stderr[-500:]
