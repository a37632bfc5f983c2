"""Dream's sampler beside the goldens (tests/decoding/test_dream_golden.py): its step plan, the shift interventions
under it, its options on the command line, the adapter's defaults in the records, and `--schedule llada`."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dream_golden_checkpoint import build, encode
from mdlm_probe.adapters import load_model
from mdlm_probe.tasks.interventions import Shift
from mdlm_probe.core.records import read_records
from mdlm_probe.decoding import SamplerConfig, generate
from mdlm_probe.decoding.schedules import get_schedule

MASK = 2


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dream") / "tiny-dream")


@pytest.fixture(scope="module")
def dream(ckpt):
    return load_model(ckpt)


# ----------------------------------------------------------------------------------------- the plan
def test_dream_plan_commits_by_its_clock():
    s = get_schedule("dream")
    plan = s.plan(torch.tensor([16, 64]), 16)
    assert plan.sum(1).tolist() == [16, 64]  # every mask by the last step
    assert plan[0, 0] == 0 and plan[0, -1] == 2  # steps == masks: nothing at first, two at the end
    times = torch.linspace(1, 1e-3, 17)
    n = 64
    for i in range(15):  # int(n * (1 - s/t)) of the masks still open, in float32
        assert int(plan[1, i]) == int(torch.tensor(n) * (1 - times[i + 1] / times[i]))
        n -= int(plan[1, i])
    assert get_schedule("dream", SamplerConfig(eps=0.5)).plan(torch.tensor([16]), 4).tolist() != plan[:1, :4].tolist()


def test_a_replan_mid_block_keeps_the_clock():
    """Asked again at step f with the masks then open (what the sampler does after a hook), the plan is the
    rest of the plan made at the start: Dream recounts the masks at every step with the same times."""
    s = get_schedule("dream")
    full = s.plan(torch.tensor([40, 23]), 12)
    for f in (1, 5, 11):
        left = torch.tensor([40, 23]) - full[:, :f].sum(1)
        assert torch.equal(s.plan(left, 12, f), full[:, f:])


# ----------------------------------------------------------------------------------------- shifts under Dream's plan
def test_shift_hook_under_dreams_plan_ends_with_no_masks(dream):
    cfg = SamplerConfig(gen_length=16, steps=8, block_length=16, schedule="dream", remasking="entropy", top_k=50,
                        batch_size=2)
    prompts = [encode("Ann has 10 pens."), encode("Hi")]
    clean = generate(dream, prompts, cfg)
    shifted = generate(dream, prompts, cfg, hooks=[Shift("insert", positions=(3, 9), at=0.25)])
    for c, s in zip(clean, shifted):
        info = s["hook_info"]["shift"]
        assert info["canvas_after"] != info["canvas_before"] and MASK in info["canvas_after"]
        assert MASK not in s["output_ids"]  # Dream's plan, re-planned from the masks left, filled them
        assert s["output_ids"] != c["output_ids"]


def test_shift_command_on_a_dream_checkpoint_with_dreams_plan(ckpt, tmp_path, cli):
    out = tmp_path / "shift"
    assert cli("shift", "--ckpt", str(ckpt), "--limit", "2", "--fractions", "0,0.2", "--at", "0.5", "--mode",
               "insert", "--gen-length", "16", "--steps", "8", "--block-length", "16", "--schedule", "dream",
               "--top-k", "50", "--no-chat", "--out", str(out)) == 0
    recs = read_records(out / "shift.jsonl")[0]
    assert len(recs) == 4 and all(r["sampler"]["schedule"] == "dream" for r in recs)
    shifted = [r for r in recs if (r.get("intervention") or {}).get("fraction")]
    assert len(shifted) == 2 and all(MASK not in r["output_ids"] for r in recs)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["checkpoints"][0]["sampler"]["schedule"] == "dream"


def test_eval_and_shift_resolve_dreams_defaults_the_same_way(ckpt, tmp_path, cli):
    """Without --schedule both run commands take the family's defaults (read from config.json before the
    weights load), so a shift run can reuse an eval run of the same checkpoint as its clean half."""
    common = ["--ckpt", str(ckpt), "--limit", "2", "--gen-length", "16", "--steps", "8", "--block-length", "16",
              "--no-chat"]
    assert cli("eval", "synthetic", *common, "--out", str(tmp_path / "eval")) == 0
    assert cli("shift", *common, "--fractions", "0,0.2", "--mode", "insert", "--out", str(tmp_path / "shift"),
               "--clean-from", str(tmp_path / "eval")) == 0
    ev = json.loads((tmp_path / "eval" / "config.json").read_text())["sampler"]
    sh = json.loads((tmp_path / "shift" / "config.json").read_text())["checkpoints"][0]["sampler"]
    assert ev["schedule"] == sh["schedule"] == "dream" and ev == sh
    clean = {r["id"]: r for r in read_records(tmp_path / "shift" / "shift.jsonl")[0] if r["id"].endswith("@clean")}
    evals = {r["id"]: r for r in read_records(tmp_path / "eval" / "samples.jsonl")[0]}
    assert {i.removesuffix("@clean") for i in clean} == set(evals)
    assert all(clean[i + "@clean"]["output_ids"] == evals[i]["output_ids"] for i in evals)


# ----------------------------------------------------------------------------------------- defaults and options
def test_generate_records_dreams_defaults_and_llada_plan_stays_available(ckpt, tmp_path, cli):
    args = ["generate", "--ckpt", str(ckpt), "--prompt", "Ann has 10 pens.", "--gen-length", "16", "--no-chat"]
    assert cli(*args, "--out", str(tmp_path / "d.jsonl")) == 0
    assert cli(*args, "--schedule", "llada", "--out", str(tmp_path / "l.jsonl")) == 0
    d, l = (read_records(tmp_path / f)[0][0] for f in ("d.jsonl", "l.jsonl"))
    assert {k: d["sampler"][k] for k in ("schedule", "remasking", "top_k", "top_p", "steps", "block_length")} == \
        {"schedule": "dream", "remasking": "maskgit_plus", "top_k": 50, "top_p": 1.0, "steps": 16, "block_length": 16}
    assert "schedule" not in l["sampler"] and l["sampler"]["top_k"] == 50  # llada (left out at its old default)
    per_step = lambda r: torch.bincount(torch.tensor(r["trajectory"]["commit_step"]), minlength=16).tolist()
    assert per_step(l) == [1] * 16  # LLaDA: one a step
    assert per_step(d)[0] == 0 and per_step(d)[-1] == 2  # Dream's clock


def test_checkpoint_config_sets_dreams_generation_settings(ckpt, tmp_path):
    folder = tmp_path / "tuned"
    shutil.copytree(ckpt, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "top_k": None, "top_p": 0.9, "eps": 0.01,
                                                    "alg": "entropy"}))
    got = load_model(folder).extra["sampler_defaults"]
    assert (got["top_k"], got["top_p"], got["eps"], got["remasking"]) == (0, 0.9, 0.01, "entropy")


@pytest.mark.parametrize("bad, needle", [
    (["--top-p", "1.5"], "top-p"),
    (["--top-k", "-1"], "top-k"),
    (["--eps", "0"], "eps"),
    (["--alg-temp", "-1"], "alg-temp"),
    (["--remasking", "origin", "--schedule", "llada"], "origin"),
    (["--schedule", "cosine"], "schedule"),
])
def test_bad_dream_options_exit_2_with_one_line(ckpt, tmp_path, cli, capsys, bad, needle):
    capsys.readouterr()
    assert cli("generate", "--ckpt", str(ckpt), "--prompt", "Hi", "--gen-length", "8", "--no-chat",
               "--out", str(tmp_path / "g.jsonl"), *bad) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.count("\n") == 0


def test_alg_temp_and_origin_draw_with_the_seed(dream):
    """Random parts of Dream's sampler follow the seed: equal seeds agree, and the draws do change tokens."""
    prompts = [encode("Ann has 10 pens.")]
    for extra in (dict(alg_temp=1.0, remasking="entropy"), dict(remasking="origin", temperature=1.0)):
        cfg = SamplerConfig(gen_length=16, steps=8, block_length=16, schedule="dream", top_k=50, **extra)
        runs = [generate(dream, prompts, SamplerConfig(**{**cfg.__dict__, "seed": s}))[0]["output_ids"]
                for s in (1, 1, 2, 3)]
        assert runs[0] == runs[1] and len({tuple(r) for r in runs[1:]}) > 1
