"""`train`: each objective lowers its loss, a killed run resumes where it saved, bad options exit 2."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mdlm_probe import load_model
from mdlm_probe.core.collapse import collapse_ids
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.objectives import ce_loss, ctc_loss, mask_canvas
from mdlm_probe.runs.train import TrainConfig, init_model, make_batch, train

SMALL = dict(n_layer=1, n_embd=32, mlp_mult=2, batch_size=8, warmup=5, lr=3e-3)


def _fixed_batch_loss(model, cfg):
    """Loss terms on one fixed batch and masking (deterministic), for before/after comparisons."""
    batch = make_batch(model, cfg, 10_000, None)
    gen = torch.Generator().manual_seed(123)
    noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, gen)
    with torch.no_grad():
        logits = model.forward(noisy, attention_mask=batch["attn"])
        terms = {"ce": ce_loss(logits, batch["canvas"], masked, t, cfg.response_length).item()}
        if cfg.objective == "ctc+ce":
            terms["ctc"] = ctc_loss(logits, slice(batch["P"], None), batch["targets"], batch["target_lengths"],
                                    model.slack_id, cfg.collapse).item()
    return terms


@pytest.mark.parametrize("objective,collapse", [("ce", "surface"), ("ctc+ce", "ctc"), ("ctc+ce", "surface")])
def test_a_few_steps_lower_each_loss(tmp_path, objective, collapse):
    torch.set_num_threads(1)
    cfg = TrainConfig(objective=objective, collapse=collapse, steps=60, eval_n=0, save_every=1000, **SMALL)
    torch.manual_seed(cfg.seed)
    before = _fixed_batch_loss(init_model(cfg), cfg)
    train(cfg, tmp_path / "run", progress=False)

    model = load_model(tmp_path / "run")  # the finished checkpoint folder
    after = _fixed_batch_loss(model, cfg)
    for term in before:
        assert after[term] < before[term] * 0.9, (term, before, after)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "mdlm_probe", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)


def test_killed_run_resumes_from_its_last_save(tmp_path):
    args = ["--steps", "40", "--save-every", "5", "--eval-n", "0", "--n-layer", "1", "--n-embd", "32",
            "--batch-size", "8", "--warmup", "5"]
    full = _cli(*args, "--out", str(tmp_path / "full"))
    assert full.wait(timeout=600) == 0, full.stderr.read()

    run = tmp_path / "killed"
    p = _cli(*args, "--out", str(run))
    deadline = time.time() + 600
    while time.time() < deadline:  # wait for a save part-way through, then kill -9
        if (run / "train_log.jsonl").is_file() and sum(1 for _ in open(run / "train_log.jsonl")) >= 10:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    saved = torch.load(run / "last.pt", weights_only=False)["step"]
    assert 0 < saved < 40
    p = _cli(*args, "--out", str(run))
    assert p.wait(timeout=600) == 0, p.stderr.read()
    steps = [json.loads(l)["step"] for l in open(run / "train_log.jsonl")]
    assert steps[saved:] == list(range(saved, 40))  # continued from the saved step, nothing repeated after it
    # batches and masks are seeded by step, so the resumed weights equal an uninterrupted run's
    from safetensors.torch import load_file
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(run / "model.safetensors")
    # bit-equal on purpose: both runs take the same steps with the same kernels, shapes and threads on this machine
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    side = json.loads((run / "mdlm_probe.json").read_text())
    assert side["objective"] == "ce" and side["steps"] == 40 and side["mask_id"] == 1


def test_heldout_accuracy_is_written_into_the_sidecar(tmp_path):
    side = train(TrainConfig(steps=2, eval_n=4, **SMALL), tmp_path / "r", progress=False)
    assert side["heldout"]["n"] == 4 and 0.0 <= side["heldout"]["accuracy"] <= 1.0
    assert side["heldout"]["sampler"]["temperature"] == 0.0


@pytest.mark.parametrize("collapse", ["surface", "ctc"])
def test_slack_gaps_bound_the_interior_slacks_of_the_ce_canvas(collapse):
    def interior(gaps):
        cfg = TrainConfig(objective="ctc+ce", collapse=collapse, slack_gaps=gaps, **SMALL)
        model = init_model(cfg)
        counts = []
        for step in range(20):
            b = make_batch(model, cfg, step, None)
            for row, t, n in zip(b["canvas"][:, b["P"]:].tolist(), b["targets"].tolist(), b["target_lengths"].tolist()):
                assert collapse_ids(row, collapse, model.slack_id) == t[:n]  # a valid path to its target
                body = row[: row.index(model.eos_id)]
                seps = sum(a == c for a, c in zip(t[: n - 1], t[1 : n - 1])) if collapse == "ctc" else 0
                counts.append(body.count(model.slack_id) - seps)
        return counts

    assert set(interior(0)) == {0}  # the target packed left, slacks only after EOS
    assert set(interior(2)) == {0, 1, 2}
    assert max(interior(-1)) > 2  # every slack at a random gap


@pytest.mark.parametrize("args,needle", [
    (["--objective", "mse"], "objective"),
    (["--data", "no/such/file.jsonl"], "no data file"),
    (["--collapse", "merge"], "collapse"),
    (["--slack-gaps", "-2"], "slack-gaps"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, needle):
    p = _cli(*args, "--out", str(tmp_path / "x"))
    assert p.wait(timeout=300) == 2
    err = p.stderr.read()
    assert needle in err and "Traceback" not in err and err.strip().count("\n") == 0


def test_data_without_answers_exits_2(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"question": "What is 2+2?"}) + "\n")
    p = _cli("--data", str(f), "--out", str(tmp_path / "x"))
    assert p.wait(timeout=300) == 2 and "answer" in p.stderr.read()


def test_training_progress_reaches_a_log(tmp_path):
    """With stderr not a terminal (a log file, CI), training still says how far it got, with the total."""
    p = _cli("--steps", "3", "--eval-n", "0", "--n-layer", "1", "--n-embd", "32", "--batch-size", "4",
             "--out", str(tmp_path / "t"))
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert "train: 3/3 steps (100%)" in err and "ETA" in err and "ce " in err


def test_a_run_saved_before_new_fields_resumes_and_a_changed_one_is_named(tmp_path):
    """train_config.json from an older mdlm-probe lacks newer fields: they count as their defaults."""
    cfg = TrainConfig(steps=4, eval_n=0, save_every=2, **SMALL)
    out = tmp_path / "r"
    train(cfg, out, progress=False, stop_after=2)
    saved = json.loads((out / "train_config.json").read_text())
    for newer in ("lora", "grad_accum", "dtype"):
        assert saved.pop(newer) == getattr(TrainConfig(), newer)
    (out / "train_config.json").write_text(json.dumps(saved))
    assert train(cfg, out, progress=False)["steps"] == 4  # resumed and finished
    with pytest.raises(BadInput, match=r"different config \(lr\)"):
        train(TrainConfig(steps=4, eval_n=0, save_every=2, **{**SMALL, "lr": 1e-3}), out, progress=False)
