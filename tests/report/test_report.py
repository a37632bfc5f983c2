"""`mdlm-probe report`: sections from real tiny-random runs, self-containment, determinism, escaping,
absent data, bad input, and (when Chromium is installed) a headless screenshot with networking off."""

from __future__ import annotations

import base64
import csv
import html as htmllib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_probe.core.checkpoints import SHIPPED_DIR, folder_tokenizer
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import RecordWriter, read_records
from mdlm_probe.report.render import diff_segments
from mdlm_probe.report import build_report

ROOT = Path(__file__).resolve().parents[2]
FAST = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 8}
N_EVAL, N_SHIFT = 6, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_random):
    """Two eval runs (the checkpoint's collapse map and a forced ctc map) and one shift run, all real decodes."""
    from mdlm_probe.tasks.benchmarks import get_benchmark
    from mdlm_probe.runs.evaluate import build_records
    from mdlm_probe.core.rundir import prepare_run_dir
    from mdlm_probe.decoding import resolve_sampler
    from mdlm_probe.runs.shift import ShiftGrid, run_sweep

    root = tmp_path_factory.mktemp("runs")
    bench = get_benchmark("synthetic")
    samples = bench.load()[:N_EVAL]
    dirs = {}
    for name, collapse in (("eval-surface", None), ("eval-ctc", "ctc")):
        cfg = resolve_sampler({**FAST, "collapse": collapse}, tiny_random)
        d = prepare_run_dir(root / name, {"command": "eval", "ckpt": "tiny-random", "benchmark": "synthetic",
                                          "sampler": cfg.to_dict()})
        with RecordWriter(d / "samples.jsonl") as w:
            for r in build_records(tiny_random, bench, samples, cfg, ckpt_name="tiny-random"):
                w.write(r)
        dirs[name] = d
    cfg = resolve_sampler(FAST, tiny_random)
    grid = ShiftGrid(modes=("insert", "delete"), fractions=(0.0, 0.25), ats=(0.25, 0.5))
    d = prepare_run_dir(root / "shift", {"command": "shift", "benchmark": "synthetic",
                                         "checkpoints": [{"name": "tiny-random", "sampler": cfg.to_dict()}],
                                         "grid": grid.to_dict()})
    run_sweep(["tiny-random"], bench, samples[:N_SHIFT], {"tiny-random": cfg}, grid, d, load=lambda c: tiny_random)
    dirs["shift"] = d
    return dirs


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    path = build_report([runs["eval-surface"], runs["eval-ctc"], runs["shift"]], out, generated="TEST-TIME")
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_has_every_section_and_its_tables(report, runs):
    html = report.read_text()
    for sec in ("runs", "accuracy", "shift", "patterns", "trajectories", "diffs"):
        assert f'<section id="{sec}">' in html
    assert 'class="absent"' not in html  # these runs hold data for every section
    out = report.parent
    for name in ("runs", "checkpoints", "samplers", "accuracy", "paired", "shift", "patterns"):
        assert (out / f"{name}.csv").is_file(), name
    # Accuracy rows agree with the records, counted here independently.
    acc = {r["checkpoint"]: r for r in read_csv(out / "accuracy.csv")}
    for name, arm in (("eval-surface", "tiny-random"), ("eval-ctc", "tiny-random [ctc]")):
        recs = read_records(runs[name] / "samples.jsonl")[0]
        assert int(acc[arm]["n"]) == N_EVAL
        assert int(acc[arm]["correct"]) == sum(bool(r["correct"]) for r in recs)
    # The shift run's clean decodes do not double as a third arm: tiny-random has eval records.
    assert len(acc) == 2
    paired = read_csv(out / "paired.csv")
    assert len(paired) == 1 and int(paired[0]["n shared"]) == N_EVAL
    # One shift row per checkpoint x mode x fraction x at, each over every shifted problem.
    shift = read_csv(out / "shift.csv")
    assert sorted((r["mode"], r["at"]) for r in shift) == sorted((m, a) for m in ("delete", "insert")
                                                                for a in ("0.25", "0.5"))
    assert all(int(r["n"]) == N_SHIFT for r in shift)


def test_trajectories_mark_points_and_colour_every_position(report, runs):
    html = report.read_text()
    rows = re.findall(r'<div class="cells">(.*?)</div>', html)
    assert rows, "no trajectory rows"
    for row in rows:
        assert row.count('<span class="c') == FAST["gen_length"]
        assert re.search(r'style="background:#[0-9a-f]{6};color:#(000|fff)"', row)
    # Shifted rows mark the intervention's points.
    assert re.search(r'<span class="c [^"]*\bpt\b', html)
    recs = read_records(runs["shift"] / "shift.jsonl")[0]
    shifted = [r for r in recs if r.get("intervention")]
    assert shifted and all(r["intervention"]["points"] for r in shifted)


def test_report_is_self_contained(report):
    html = report.read_text()
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and not re.search(r"url\((?!data:)", html)
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(imgs) >= 4  # accuracy, shift lines, shift heatmap, patterns
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_rebuild_is_identical_apart_from_the_timestamp(report, runs, tmp_path):
    again = build_report([runs["eval-surface"], runs["eval-ctc"], runs["shift"]], tmp_path / "a", generated="TEST-TIME")
    assert again.read_bytes() == report.read_bytes()
    for f in report.parent.glob("*.csv"):
        assert (tmp_path / "a" / f.name).read_bytes() == f.read_bytes(), f.name
    later = build_report([runs["eval-surface"], runs["eval-ctc"], runs["shift"]], tmp_path / "b", generated="LATER")
    diff = [(a, b) for a, b in zip(report.read_text().splitlines(), later.read_text().splitlines()) if a != b]
    assert len(diff) == 1 and "TEST-TIME" in diff[0][0] and "LATER" in diff[0][1]


def _doctored_run(src: Path, dst: Path, edit) -> Path:
    """A copy of an eval run whose records went through `edit` (for content the tiny model won't write)."""
    dst.mkdir(parents=True)
    shutil.copy(src / "config.json", dst / "config.json")
    with RecordWriter(dst / "samples.jsonl") as w:
        for r in read_records(src / "samples.jsonl")[0]:
            w.write(edit(r))
    return dst


def test_untrusted_text_is_escaped_and_dropped_zeros_marked(runs, tmp_path):
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'

    def edit(r):
        if r["id"] == "synthetic/0":
            # 60+250=310: the reference's 310 written as 31 (a dropped trailing zero).
            return {**r, "reference": "60+250=310 #### 310", "reference_answer": "310", "prompt": "Eva has 60.",
                    "text": "60+250=31 #### 31", "correct": False, "verdict": "wrong", "extracted": "31"}
        return {**r, "text": evil + r["text"], "prompt": evil, "reference": evil + r["reference"],
                "ckpt": "tiny<b>random</b>", "correct": False}

    d = _doctored_run(runs["eval-surface"], tmp_path / "doctored", edit)
    html = build_report([d], tmp_path / "rep", generated="T").read_text()
    assert "<script" not in html and 'onerror="alert' not in html and "<b>random" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "tiny&lt;b&gt;random&lt;/b&gt;" in html
    assert '<span class="lost">0</span>' in html  # the reference number 310 with its lost zero struck
    assert '60+250=<span class="mark">31</span>' in html  # the evidence span in the output
    rows = read_csv(tmp_path / "rep" / "patterns.csv")
    tz = [r for r in rows if r["pattern"] == "trailing-zero" and r["checkpoint"] == "tiny-random"]
    assert len(tz) == 1 and int(tz[0]["records"]) == 1


@pytest.fixture(scope="module")
def two_ckpt_shift(tmp_path_factory):
    """A shift run over two shipped checkpoints (their ids repeat), mined by `mdlm-probe errors`."""
    from mdlm_probe import load_model
    from mdlm_probe.tasks.benchmarks import get_benchmark
    from mdlm_probe.cli import main
    from mdlm_probe.core.rundir import prepare_run_dir
    from mdlm_probe.decoding import resolve_sampler
    from mdlm_probe.runs.shift import ShiftGrid, run_sweep

    ckpts = ("tiny-ce-ft", "tiny-ctc")
    models = {c: load_model(c) for c in ckpts}
    cfgs = {c: resolve_sampler({"batch_size": 8}, models[c]) for c in ckpts}
    grid = ShiftGrid(modes=("insert", "delete"), fractions=(0.0, 0.05), ats=(0.5,))
    d = prepare_run_dir(tmp_path_factory.mktemp("two") / "shift", {
        "command": "shift", "benchmark": "synthetic", "grid": grid.to_dict(),
        "checkpoints": [{"name": c, "sampler": cfgs[c].to_dict()} for c in ckpts]})
    run_sweep(list(ckpts), get_benchmark("synthetic"), get_benchmark("synthetic").load()[:8], cfgs, grid, d,
              load=models.__getitem__)
    assert main(["errors", str(d), "--show", "0"]) == 0
    return d


def test_patterns_of_a_multi_checkpoint_shift_run_match_errors_summary(two_ckpt_shift, tmp_path):
    """Each checkpoint's clean + shifted pattern rows add up to its own errors_summary.csv rows (ids repeat
    across checkpoints; findings must not be pooled), and every example shows its own record's finding."""
    d = two_ckpt_shift
    summary = {(r["run"].split("/", 1)[1], r["pattern"]): r for r in read_csv(d / "errors_summary.csv")}
    ckpts = sorted({c for c, _ in summary})
    assert ckpts == ["tiny-ce-ft", "tiny-ctc"]
    counts = ("n", "n_wrong", "records", "findings", "records_wrong")
    # The check means something only if the checkpoints' findings differ.
    assert any(summary[(ckpts[0], p)]["findings"] != summary[(ckpts[1], p)]["findings"] for _, p in summary)
    html = build_report([d], tmp_path / "rep", generated="T").read_text()
    rows = read_csv(tmp_path / "rep" / "patterns.csv")
    assert sorted({r["checkpoint"] for r in rows}) == [f"{c} · {k}" for c in ckpts for k in ("clean", "shifted")]
    for (ckpt, pattern), want in summary.items():
        got = [r for r in rows if r["pattern"] == pattern and r["checkpoint"].startswith(ckpt + " · ")]
        assert len(got) == 2
        for k in counts:
            assert sum(int(r[k]) for r in got) == int(want[k]), (ckpt, pattern, k)
    # Example cards: the marked evidence is the finding errors.jsonl wrote for that checkpoint and id.
    found = {(f["ckpt"], f["id"], f["pattern"], f["evidence"]) for f in map(json.loads, open(d / "errors.jsonl"))}
    cards = html.split('<div class="ex">')[1:]
    assert cards
    for card in cards:
        title = htmllib.unescape(re.match(r"<b>([^<]*)</b>", card).group(1))
        pattern, ckpt, kind, rid, verdict = title.split(" · ")
        evidence = re.search(r'<span class="mark">([^<]*)</span>', card.split("</div></div>")[0])
        assert (ckpt, rid, pattern, htmllib.unescape(evidence.group(1) if evidence else "")) in found, title


def test_absent_sections_say_what_is_missing(runs, tmp_path):
    html = build_report([runs["eval-surface"]], tmp_path / "rep", generated="T").read_text()
    assert "No shift records" in html
    assert "No two checkpoints share sample ids" in html
    assert not (tmp_path / "rep" / "shift.csv").exists()


def test_one_glyph_legend_in_the_terminal_and_the_report(tiny_random, runs, tmp_path):
    """A special token shows the same glyph in `shift --show` and in the report, under one legend."""
    from rich.console import Console

    from mdlm_probe.cli.shift import _render_pair
    from mdlm_probe.report.render import LEGEND, TokenText, legend_text, model_glyphs

    m = tiny_random
    ids = [m.mask_id, m.slack_id, m.eos_id, m.pad_id]
    terminal = model_glyphs(m, ids)
    assert len(set(terminal)) == 4  # four roles, four glyphs
    assert TokenText()("tiny-random", ids) == list(zip(terminal, ["mask", "slack", "eos", "pad"]))
    meaning = dict(LEGEND)
    assert [meaning[g] for g in terminal] == ["mask", "<slack>", "EOS", "padding"]
    # A decode holding every special token (the tiny random model rarely writes them), as a trajectory.
    d = _doctored_run(runs["eval-surface"], tmp_path / "specials",
                      lambda r: {**r, "output_ids": ids + r["output_ids"][len(ids):]})
    html = build_report([d], tmp_path / "rep", generated="T").read_text()
    assert "glyphs: " + ", ".join(f"<code>{g}</code> {htmllib.escape(w)}" for g, w in LEGEND) in html
    # Every special cell in the report's trajectories shows its role's glyph.
    cells = re.findall(r'<span class="c (mask|slack|eos|pad)\b[^"]*"[^>]*>([^<]*)</span>', html)
    assert {k for k, _ in cells} == {"mask", "slack", "eos", "pad"}
    assert all(g == dict(zip(["mask", "slack", "eos", "pad"], terminal))[k] for k, g in cells)
    con = Console(record=True, width=200)
    clean = {"id": "p/0@clean", "output_ids": ids, "text": "ab", "correct": None}
    _render_pair(con, m, clean, {**clean, "id": "p/0@x", "output_ids": ids[::-1]}, title="t")
    out = con.export_text()
    assert legend_text() in out and "".join(terminal) in out and "".join(terminal[::-1]) in out


def _series_by_axes(fig):
    """Per axes: (colour, marker, linestyle) of each line and the face colours of its bars."""
    from matplotlib.colors import to_hex

    return [([(to_hex(l.get_color()), l.get_marker(), l.get_linestyle()) for l in ax.get_lines()],
             [to_hex(b.get_facecolor()) for b in ax.patches]) for ax in fig.axes]


def test_shift_figure_separates_every_at_and_checkpoint():
    """One panel per mode and `at` (so @0.25 and @0.75 never share a line style), a colour and marker per
    checkpoint in each panel."""
    from mdlm_probe.report.plots import shift_accuracy_figure

    rows = [{"ckpt": c, "mode": m, "fraction": f, "at": a, "acc_clean": 0.8, "acc_shifted": 0.5, "drop_lo": 0.1,
             "drop_hi": 0.5} for c in ("a", "b", "c") for m in ("insert", "delete") for a in ("0.25", "0.75")
            for f in (0.01, 0.05)]
    fig = shift_accuracy_figure(rows)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert sorted(ax.get_title() for ax in panels) == sorted(f"{m} · at {a}" for m in ("delete", "insert")
                                                          for a in ("0.25", "0.75"))
    for lines, _ in _series_by_axes(fig):
        assert len(lines) == 3 and len({x[0] for x in lines}) == 3 and len({x[1] for x in lines}) == 3
    assert len({tuple(lines) for lines, _ in _series_by_axes(fig)}) == 1  # same encoding in every panel


def test_pattern_figure_gives_each_checkpoint_one_colour():
    """12 series (4 checkpoints x eval, clean, shifted): a row of panels per condition, so colour only
    has to tell the 4 checkpoints apart, and it does so the same way in every panel."""
    import pandas as pd

    from mdlm_probe.report.plots import patterns_figure

    ckpts, conds = ["c1", "c2", "c3", "c4"], ["eval", "clean", "shifted"]
    series = [(f"{c} · {k}", c, k) for c in ckpts for k in conds]
    t = pd.DataFrame([{"checkpoint": label, "pattern": p, "records": 1, "rate": 0.1 * (i + 1), "rate_wrong": 0.5}
                      for i, (label, _, _) in enumerate(series) for p in ("trailing-zero", "repeated-token")])
    fig = patterns_figure(t, series)
    axes = _series_by_axes(fig)
    assert len(axes) == 2 * len(conds)
    colours = [bars for _, bars in axes]
    for bars in colours:  # 2 patterns x 4 checkpoints, 4 distinct colours, each twice
        assert len(bars) == 8 and len(set(bars)) == 4
    assert len({tuple(b) for b in colours}) == 1
    assert [ax.get_title().split(":")[0] for ax in fig.axes[::2]] == conds


def test_report_and_compare_pair_runs_with_one_statistic(report, runs):
    """The report's paired table and `compare` give the same numbers for the same two runs
    (both call stats.paired_binary)."""
    from mdlm_probe.runs.compare import compare_runs
    from mdlm_probe.core.rundir import load_run

    (row,) = read_csv(report.parent / "paired.csv")
    assert (row["a"], row["b"]) == ("tiny-random", "tiny-random [ctc]")
    res = compare_runs([load_run(runs["eval-surface"], need_records=True),
                        load_run(runs["eval-ctc"], need_records=True)], patterns=[])
    (pair,) = res["pairs"]
    assert int(row["n shared"]) == pair["n"] == N_EVAL
    assert float(row["b - a"]) == pytest.approx(pair["diff"], abs=1e-6)
    assert [float(row["ci_low"]), float(row["ci_high"])] == pytest.approx(pair["diff_ci"], abs=1e-6)
    assert float(row["mcnemar p"]) == pytest.approx(pair["mcnemar_p"], abs=1e-6)
    assert (int(row["only a right"]), int(row["only b right"])) == (len(pair["a_right_b_wrong"]),
                                                                    len(pair["b_right_a_wrong"]))


def test_paired_binary():
    from mdlm_probe.core.stats import mcnemar_exact, paired_binary, paired_bootstrap

    a = [1, 1, 1, 0, 0, 1, 0, 1]
    b = [1, 0, 0, 0, 1, 1, 0, 0]
    pr = paired_binary(a, [bool(x) for x in b], seed=3)
    assert (pr.n, pr.mean_a, pr.mean_b) == (8, 5 / 8, 3 / 8)
    assert (pr.only_a, pr.only_b) == ([1, 2, 7], [4])
    assert pr.p == mcnemar_exact(3, 1) == pytest.approx(2 * (1 + 4) / 2 ** 4)
    assert (pr.diff, *pr.ci) == paired_bootstrap(a, b, seed=3)


def test_diff_segments():
    left, right = diff_segments("1200 apples", "120 apples")
    assert "".join(s["text"] for s in left) == "1200 apples"
    assert "".join(s["text"] for s in right) == "120 apples"
    assert [s for s in left if s["cls"] == "del"] == [{"text": "0", "cls": "del"}]
    assert not [s for s in right if s["cls"] == "ins"]


def test_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no run directory"):
        build_report([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="not a run directory"):
        build_report([tmp_path / "empty"], tmp_path / "out")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(BadInput, match="corrupt"):
        build_report([tmp_path / "bad"], tmp_path / "out")


def test_cli_writes_report_and_exits_2_on_bad_input(runs, tmp_path):
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", "report", str(runs["eval-surface"]), "--out",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r" / "index.html").is_file() and "index.html" in p.stdout
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", "report", str(tmp_path / "nope"), "--out",
                        str(tmp_path / "r2")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0


# ----------------------------------------------------------------------------------------- headless browser
sys.path.insert(0, str(ROOT / "analyses"))
import screenshot_report  # noqa: E402

needs_chromium = pytest.mark.skipif(screenshot_report.find_chromium() is None,
                                    reason="needs Chromium (Debian package chromium) for the headless screenshot")


@needs_chromium
def test_screenshot_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "shot.png"
    p = subprocess.run([sys.executable, str(ROOT / "analyses" / "screenshot_report.py"), str(report.parent),
                        "--out", str(shot)], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads(p.stdout[: p.stdout.rindex("}") + 1])
    assert res["images"] >= 4 and res["images_decoded"] == res["images"] and res["failures"] == []
    assert res["page_height"] > 1500  # the full page, not one viewport


@needs_chromium
def test_screenshot_check_catches_external_requests(tmp_path):
    """The checker can fail: an image from the network is blocked (networking off) and reported."""
    (tmp_path / "index.html").write_text('<html><body><img src="https://example.com/x.png"></body></html>')
    res = screenshot_report.screenshot(tmp_path, tmp_path / "s.png", timeout=60)
    assert any("external request: https://example.com/x.png" in f for f in res["failures"])
    assert any("image did not decode" in f for f in res["failures"])
    assert any("external URL in the HTML" in f for f in res["failures"])


def test_page_opens_with_the_summary_and_ends_with_the_configuration(report):
    """Results first: headline accuracy with CIs, the key plots and the paired differences; what was run,
    checkpoints, sampler settings and run cards last, the long tables collapsed."""
    html = report.read_text()
    order = [html.index(f'<section id="{s}">') for s in ("summary", "accuracy", "shift", "diffs", "runs")]
    assert order == sorted(order)
    summary = html[order[0]:html.index("</section>", order[0])]
    acc = {r["checkpoint"]: r for r in read_csv(report.parent / "accuracy.csv")}
    for arm, r in acc.items():  # each arm's accuracy and Wilson CI, as in accuracy.csv
        assert f"<td>{htmllib.escape(arm)}</td>" in summary
        assert f"[{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]" in summary
    assert 'alt="accuracy per checkpoint and benchmark"' in summary and 'alt="accuracy vs shifted fraction"' in summary
    assert html.count('alt="accuracy per checkpoint and benchmark"') == 1  # not repeated below
    runs_part = html[order[-1]:]
    assert runs_part.count("<details") == 3 and "<summary><h3>Sampler settings</h3></summary>" in runs_part


def test_summary_lists_differences_whose_ci_excludes_zero():
    import pandas as pd
    from mdlm_probe.report.summary import section_summary

    paired = pd.DataFrame([
        {"benchmark": "gsm8k", "a": "A", "b": "B", "n shared": 100, "b - a": 0.2, "ci_low": 0.1, "ci_high": 0.3,
         "mcnemar p": 0.001},
        {"benchmark": "gsm8k", "a": "A", "b": "C", "n shared": 100, "b - a": 0.01, "ci_low": -0.05, "ci_high": 0.07,
         "mcnemar p": 0.8}])
    acc = pd.DataFrame([{"checkpoint": "A", "benchmark": "gsm8k", "n": 100, "accuracy": 0.5, "ci_low": 0.4,
                         "ci_high": 0.6}])
    shift = pd.DataFrame([{"checkpoint": "A", "mode": m, "fraction": 0.05, "at": "0.5", "drop": d, "drop_lo": d - 0.1,
                           "drop_hi": d + 0.1, "acc_clean": 0.5} for m, d in (("insert", 0.3), ("delete", 0.1))])
    s = section_summary({"accuracy": {"plot": "data:x", "frames": {"accuracy": acc, "paired": paired}},
                         "shift": {"lines": None, "frames": {"shift": shift}}})
    assert s["headline"]["rows"] == [["A", "gsm8k", "100", "0.500", "[0.400, 0.600]"]]
    assert len(s["findings"]) == 2 and s["findings"][0].startswith("B - A on gsm8k: +0.200 [+0.100, +0.300]")
    assert "insert" in s["findings"][1] and "+0.300" in s["findings"][1]  # the largest drop
    assert s["unclear"] == 1  # C - A spans zero: counted, not listed
    assert [p["alt"] for p in s["plots"]] == ["accuracy per checkpoint and benchmark"]
    assert section_summary({}) is None


def test_frontier_markers_that_coincide_sit_side_by_side():
    """threshold=0.9 was hidden under dual+threshold=0.9 (same speed and accuracy): they now get offsets."""
    from mdlm_probe.runs.figures import overlap_offsets

    pts = [(100.0, 0.6), (300.0, 0.58), (150.0, 0.6), (304.0, 0.58)]
    off = overlap_offsets(pts)
    assert off[0] == off[2] == (0.0, 0) and off[1][0] < 0 < off[3][0] and {off[1][1], off[3][1]} == {0, 1}
    assert overlap_offsets([(1.0, 0.5)]) == [(0.0, 0)]


def test_tokenizers_of_remote_code_checkpoints_load_without_asking(capfd):
    """A checkpoint folder with an `auto_map` (its own modeling file): the report's glyphs and the dynamics'
    alignment read its tokenizer without remote code, so transformers never asks "Do you wish to run the custom
    code?" on the terminal (it did, once per checkpoint, in every report of the subword checkpoints)."""
    from mdlm_probe.report.render import TokenText
    from mdlm_probe.runs.dynamics.align import _load

    with_remote_code = SHIPPED_DIR / "subword-ctc"
    assert "auto_map" in json.loads((with_remote_code / "config.json").read_text())
    tok = folder_tokenizer(with_remote_code)
    ids = tok.encode("Ann has 12 pens.", add_special_tokens=False)
    glyphs = TokenText()(str(with_remote_code), ids)
    assert "".join(g for g, _ in glyphs).replace("\u2009", " ").strip().startswith("Ann")
    assert _load(str(with_remote_code)) is not None
    out, err = capfd.readouterr()
    assert "custom code" not in out + err
