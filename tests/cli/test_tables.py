"""Tables people read (cli/tables.py): whole numbers and names at 80 columns, and --format csv|json for scripts."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from rich.console import Console

from mdlm_probe.cli.shift import _print_table as print_shift
from mdlm_probe.cli.tables import Col, print_table
from mdlm_probe.core.checkpoints import apply_prompt_format, read_sidecar, resolve
from mdlm_probe.tasks.presets import load_presets

SCRIPT = [sys.executable, "-c", "import sys; from mdlm_probe.cli import main; sys.exit(main(sys.argv[1:]))"]


def run_script(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "OMP_NUM_THREADS": "1"}
    return subprocess.run(SCRIPT + list(args), capture_output=True, text=True, env=env, timeout=300)


def shift_rows() -> list[dict]:
    return [{"ckpt": c, "mode": m, "fraction": f, "at": "0.5", "n": 128, "acc_clean": 0.8333, "acc_shifted": 0.5,
             "drop": 0.3333, "drop_lo": 0.2083, "drop_hi": 0.4583, "flip_rate": 0.3333, "edit_tokens": 0.05,
             "absorbed": 0.1} for c in ("tiny-ce", "tiny-ctc-surface") for m in ("insert", "delete") for f in (0, 0.05)]


def captured(width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width), buf


def test_shift_summary_at_80_columns_keeps_numbers_and_names_whole():
    con, buf = captured(80)
    print_shift(con, shift_rows())
    lines = buf.getvalue().splitlines()
    table = lines[1:lines.index(next(x for x in lines if x.startswith("p: ")))]
    assert all(len(x.rstrip()) <= 80 for x in table)
    # each checkpoint's full name on its own heading line, every number whole on a row
    assert "ckpt: tiny-ctc-surface" in table and "ckpt: tiny-ce" in table
    assert sum("0.833 0.500" in x and "+0.333 [+0.21,+0.46]" in x for x in table) == 8
    wide, wbuf = captured(200)
    print_shift(wide, shift_rows())
    assert "ckpt: " not in wbuf.getvalue() and wbuf.getvalue().count("tiny-ctc-surface") == 4  # one table when it fits


def test_too_wide_tables_turn_vertical_never_cut():
    long = "a-very-long-checkpoint-name-that-must-stay-copyable-" * 2
    cols = [Col("name", "name"), Col("value", "value"), Col("notes", "notes")]
    rows = [{"name": long, "value": "0.8333333", "notes": "x" * 90}]
    con, buf = captured(80)
    print_table(con, "t", cols, rows)
    out = buf.getvalue()
    assert long in out.splitlines() and "0.8333333" in out and "x" * 90 in out and "…" not in out


def test_csv_and_json_print_raw_rows(capsys):
    print_table(Console(), "t", [Col("a", "a")], [{"a": 1.5, "b": float("nan")}], fmt="json",
                records=[{"a": 1.5, "b": float("nan")}])
    assert json.loads(capsys.readouterr().out) == [{"a": 1.5, "b": None}]
    print_table(Console(), "t", [Col("a", "a")], [{"a": 1.5, "b": 2}], fmt="csv")
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out))) == [{"a": "1.5"}]


def test_presets_through_the_console_script_at_80_columns():
    r = run_script("presets")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "…" not in r.stdout
    for name in load_presets():
        assert name in lines  # the whole name alone on a line: copyable
    j = run_script("presets", "--format", "json")
    assert sorted(x["preset"] for x in json.loads(j.stdout)) == sorted(load_presets())
    c = run_script("presets", "--format", "csv")
    assert sorted(x["preset"] for x in csv.DictReader(io.StringIO(c.stdout))) == sorted(load_presets())
    bad = run_script("presets", "--format", "xml")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--format" in bad.stderr


def test_eval_compare_and_card_formats(tmp_path, cli, capsys):
    fast = ["--gen-length", "8", "--steps", "8", "--block-length", "8", "--batch-size", "4", "--limit", "3"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("eval", "synthetic", "--ckpt", "tiny-random", "--out", str(a), "--format", "json", *fast) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 3
    assert {k: summary[k] for k in json.loads((a / "summary.json").read_text())} == json.loads((a / "summary.json").read_text())
    assert cli("eval", "synthetic", "--ckpt", "tiny-random", "--out", str(b), "--format", "csv", *fast) == 0
    row, = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert {"accuracy", "ci_low", "ci_high"} <= set(row)
    assert cli("compare", str(a), str(b), "--out", str(tmp_path / "c"), "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["metric"] == "accuracy" and {"ci_low", "ci_high"} <= set(rows[0])  # one CI convention
    with open(tmp_path / "c" / "compare.csv") as fh:
        assert next(csv.reader(fh)) == list(rows[0])  # the same columns as the file
    assert cli("card", str(a), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["scorer"] == "numeric match"


def test_generate_applies_the_checkpoints_prompt_format(tmp_path, cli):
    side = read_sidecar(resolve("tiny-ctc-surface"))
    assert side["prompt_format"] == "{prompt}\n"
    assert apply_prompt_format(side, "q?") == "q?\n" and apply_prompt_format(side, "q?\n") == "q?\n"
    assert apply_prompt_format(None, "q?") == "q?" and apply_prompt_format({"prompt_format": None}, "q?") == "q?"
    q = "Ann has 120 pens and gets 80 more. How many now?"
    recs = {}
    for name, args in {"bare": [q], "newline": [q + "\n"], "raw": [q, "--raw-prompt"]}.items():
        out = tmp_path / f"{name}.jsonl"
        assert cli("generate", "--ckpt", "tiny-ctc-surface", "--out", str(out), "--prompt", *args) == 0
        recs[name] = json.loads(out.read_text().splitlines()[0])
    # the bare prompt reads as the model was trained: the same prompt ids, the same output ids
    assert recs["bare"]["prompt"] == q + "\n"
    assert recs["bare"]["prompt_ids"] == recs["newline"]["prompt_ids"]
    assert recs["bare"]["output_ids"] == recs["newline"]["output_ids"]
    assert recs["raw"]["prompt"] == q and recs["raw"]["prompt_ids"] != recs["bare"]["prompt_ids"]
