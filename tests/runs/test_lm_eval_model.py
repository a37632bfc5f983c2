"""The lm-eval model `mdlm_probe`: ELBO estimator math, stop strings, request settings, and whole runs through
`lm_eval.simple_evaluate` and `mdlm-probe lm-eval` on tiny local tasks (tests/fixtures/lm_eval_task)."""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("lm_eval")

from mdlm_probe.adapters import MaskedDiffusionModel  # noqa: E402
from mdlm_probe.core.exceptions import BadInput  # noqa: E402
from mdlm_probe.runs.lm_eval_model import (MDLMProbeLM, cut_at_stop, elbo_loglikelihood, greedy_matches, mask_counts,
                                           register, request_sampler)

TASKS = Path(__file__).resolve().parents[1] / "fixtures" / "lm_eval_task"


# ----------------------------------------------------------------------------------------- fake models
class _Fn(torch.nn.Module):
    """A module whose logits come from a function of the ids (and one parameter, for .device)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.fn(input_ids))


def fake_model(tiny_random, fn, max_length=512) -> MaskedDiffusionModel:
    """The tiny-random tokenizer and special ids with logits we control."""
    return MaskedDiffusionModel(module=_Fn(fn), tokenizer=tiny_random.tokenizer, mask_id=tiny_random.mask_id,
                                eos_id=tiny_random.eos_id, slack_id=tiny_random.slack_id, pad_id=tiny_random.pad_id,
                                name="fake", sidecar=tiny_random.sidecar, max_length=max_length)


def table_model(tiny_random, prefs: dict[str, float]):
    """Context-free: every position gets the same logits, `prefs` char -> logit (others 0)."""
    V = tiny_random.vocab_size
    bias = torch.zeros(V)
    for ch, v in prefs.items():
        bias[tiny_random.tokenizer.convert_tokens_to_ids(ch)] = v
    return fake_model(tiny_random, lambda ids: bias.expand(*ids.shape, V).clone()), bias.log_softmax(-1)


def mixing_model(tiny_random, seed=0):
    """Context-dependent: each position sees the mean embedding of the whole (partly masked) sequence."""
    V, d = tiny_random.vocab_size, 8
    g = torch.Generator().manual_seed(seed)
    emb, pos, out = torch.randn(V, d, generator=g), torch.randn(64, d, generator=g), 2 * torch.randn(d, V, generator=g)
    return fake_model(tiny_random, lambda ids: (emb[ids].mean(1, keepdim=True) + pos[: ids.shape[1]]) @ out)


def scripted_model(tiny_random, script: str, gen_length: int):
    """Writes `script` into the last `gen_length` positions (then EOS), whatever the prompt."""
    V, tok = tiny_random.vocab_size, tiny_random.tokenizer
    ids = tok(script, add_special_tokens=False)["input_ids"][:gen_length]
    ids += [tiny_random.eos_id] * (gen_length - len(ids))

    def fn(x):
        logits = torch.zeros(*x.shape, V)
        P = x.shape[1] - gen_length
        for j, t in enumerate(ids):
            logits[:, P + j, t] = 10.0
        return logits
    return fake_model(tiny_random, fn)


def exact_elbo(model, ctx, tgt):
    """The ELBO and one MC sample's variance, by enumerating every mask count and masked set."""
    T, P = len(tgt), len(ctx)
    seq = torch.tensor([ctx + tgt])
    vals, probs = [], []
    for m in range(1, T + 1):
        subsets = list(itertools.combinations(range(T), m))
        for S in subsets:
            x = seq.clone()
            x[0, [P + i for i in S]] = model.mask_id
            logp = model(x)[0].log_softmax(-1)
            vals.append(T / m * sum(float(logp[P + i, tgt[i]]) for i in S))
            probs.append(1 / T / len(subsets))
    mean = sum(p * v for p, v in zip(probs, vals))
    var = sum(p * (v - mean) ** 2 for p, v in zip(probs, vals))
    return mean, var, vals


def reqs(*args):
    return [SimpleNamespace(args=a) for a in args]


# ----------------------------------------------------------------------------------------- the estimator
def test_mask_counts_are_stratified_over_1_to_T():
    g = torch.Generator().manual_seed(0)
    for T, b in [(3, 9), (5, 5), (7, 4), (1, 3)]:
        m = mask_counts(T, b, g)
        assert m.shape == (b,) and int(m.min()) >= 1 and int(m.max()) <= T
        if b % T == 0:  # a batch that is a multiple of T holds every count equally often
            assert sorted(m.tolist()) == sorted(list(range(1, T + 1)) * (b // T))


def test_elbo_matches_enumeration_on_a_context_dependent_model(tiny_random):
    model = mixing_model(tiny_random)
    ctx, tgt = [10, 11, 12, 13], [20, 30, 40]
    mean, var, vals = exact_elbo(model, ctx, tgt)
    n = 600
    tol = 5 * math.sqrt(var / n)
    assert max(abs(v - mean) for v in vals) > 5 * tol  # the samples differ: a wrong weighting would show
    est = elbo_loglikelihood(model, ctx, tgt, mc_num=n, mc_batch_size=30, seed=1)
    assert abs(est - mean) < tol, (est, mean, tol)


def test_elbo_is_the_exact_loglikelihood_for_a_context_free_model(tiny_random):
    model, logp = table_model(tiny_random, {"7": 4.0, "0": 2.0, "3": -3.0})
    ids = tiny_random.tokenizer("7073", add_special_tokens=False)["input_ids"]
    exact = float(logp[ids].sum())  # E[(T/m) sum over masked] = sum over all positions when p ignores context
    est = elbo_loglikelihood(model, [5, 6], ids, mc_num=2000, mc_batch_size=40, seed=0)
    assert abs(est - exact) < 0.05 * abs(exact)


def test_loglikelihood_finite_deterministic_and_seeded(tiny_random):
    pairs = [("Ann has 3 pens. ", "#### 3"), ("", "12"), ("7*10=", "70")]
    a = MDLMProbeLM(pretrained=tiny_random, mc_num=8, mc_batch_size=4, seed=0).loglikelihood(reqs(*pairs))
    b = MDLMProbeLM(pretrained=tiny_random, mc_num=8, mc_batch_size=4, seed=0).loglikelihood(reqs(*pairs[::-1]))
    c = MDLMProbeLM(pretrained=tiny_random, mc_num=8, mc_batch_size=4, seed=1).loglikelihood(reqs(*pairs))
    assert all(math.isfinite(ll) and ll < 0 and greedy is False for ll, greedy in a)
    assert a == b[::-1]  # same seed, any order: same values
    assert [x[0] for x in a] != [x[0] for x in c]


def test_loglikelihood_ranks_the_preferred_continuation_first(tiny_random):
    model, _ = table_model(tiny_random, {"8": 3.0, "0": 1.0, "9": -3.0})
    lm = MDLMProbeLM(pretrained=model, mc_num=16, mc_batch_size=8, check_greedy=True)
    (good, g_greedy), (bad, b_greedy) = lm.loglikelihood(reqs(("4*20=", "80"), ("4*20=", "90")))
    assert good > bad
    assert g_greedy is False and b_greedy is False  # argmax is "8" everywhere: "88" is the greedy answer
    assert greedy_matches(model, [5], tiny_random.tokenizer("88", add_special_tokens=False)["input_ids"])


def test_loglikelihood_rolling_windows_sum_to_the_whole(tiny_random):
    model, logp = table_model(tiny_random, {"a": 2.0, "b": -1.0})
    text = "abba" * 5  # 20 tokens, windows of 4 with max_length 8
    lm = MDLMProbeLM(pretrained=model, mc_num=400, mc_batch_size=40, max_length=8)
    (total,) = lm.loglikelihood_rolling(reqs((text,)))
    exact = float(logp[tiny_random.tokenizer(text, add_special_tokens=False)["input_ids"]].sum())
    assert abs(total - exact) < 0.05 * abs(exact)


# ----------------------------------------------------------------------------------------- generation
def test_cut_at_stop_uses_the_earliest_stop_string():
    assert cut_at_stop("12 #### 80\nQuestion: x", ["Question:", "\n"]) == "12 #### 80"
    assert cut_at_stop("abc", []) == "abc" and cut_at_stop("abc", [""]) == "abc"
    assert cut_at_stop("abcabc", ["c", "b"]) == "a"


def test_request_sampler_precedence_and_schedule(tiny_random):
    # sidecar: gen_length 32, steps 32, block_length 32
    cfg, until, ignored = request_sampler(tiny_random, {}, {"until": "Q:", "max_gen_toks": 16,
                                                            "repetition_penalty": 1.1})
    assert (cfg.gen_length, cfg.steps, cfg.block_length, until, ignored) == (16, 16, 16, ["Q:"], ["repetition_penalty"])
    # Dream's filters are sampler settings: a task's top_p / top_k (numbers or strings) apply, typed
    cfg, _, ignored = request_sampler(tiny_random, {}, {"top_p": "0.9", "top_k": 5.0, "alg_temp": "0"})
    assert (cfg.top_p, cfg.top_k, cfg.alg_temp, ignored) == (0.9, 5, 0.0, [])
    cfg, *_ = request_sampler(tiny_random, {"block_length": 8}, {"max_gen_toks": 20})
    assert (cfg.gen_length, cfg.block_length, cfg.steps) == (24, 8, 24)  # whole blocks, one step per token
    cfg, *_ = request_sampler(tiny_random, {"block_length": 8, "steps": 3}, {"max_gen_toks": 20})
    assert (cfg.gen_length, cfg.block_length, cfg.steps) == (24, 8, 3)
    cfg, *_ = request_sampler(tiny_random, {"gen_length": 8, "temperature": 0.5},
                              {"max_gen_toks": 64, "do_sample": False, "temperature": 0.0})
    assert (cfg.gen_length, cfg.temperature) == (8, 0.5)  # model_args win over the task
    cfg, *_ = request_sampler(tiny_random, {}, {"do_sample": False, "temperature": 0.7, "steps": 8})
    assert (cfg.gen_length, cfg.steps, cfg.temperature) == (32, 8, 0.7)  # sampler names in gen_kwargs apply
    with pytest.raises(BadInput):
        MDLMProbeLM(pretrained=tiny_random, stepz=3)


def test_generate_until_honours_stop_strings(tiny_random):
    lm = MDLMProbeLM(pretrained=tiny_random, gen_length=16, steps=16, block_length=16)
    prompts = ["Ann has 300 pens.\n", "Bob has 4 cups.\n", "Kim has 7 bags.\n"]
    free = lm.generate_until(reqs(*[(p, {"until": []}) for p in prompts]))
    stops = [t[2:4] if len(t) >= 4 else "zz" for t in free]  # a stop string taken from the middle
    cut = lm.generate_until(reqs(*[(p, {"until": [s]}) for p, s in zip(prompts, stops)]))
    assert any(len(t) >= 4 for t in free)
    for t, s, c in zip(free, stops, cut):
        assert c == t[: t.index(s)] if s in t else c == t
        assert s not in c


def test_simple_evaluate_scripted_model_end_to_end(tiny_random):
    """generate_until through lm-eval: stop at newline, regex filter, exact match only where 80 is right."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    model = scripted_model(tiny_random, "x #### 80\nQuestion: 500", gen_length=24)
    table, _ = table_model(tiny_random, {"5": 3.0, "8": 3.0, "7": 3.0, "6": -3.0, "9": -3.0})
    tm = TaskManager(include_path=str(TASKS), include_defaults=False)
    gen = lm_eval.simple_evaluate(model=MDLMProbeLM(pretrained=model, gen_length=24, steps=24, block_length=24),
                                  tasks=["mdlm_probe_synth_gen"], task_manager=tm, log_samples=True)
    assert gen["results"]["mdlm_probe_synth_gen"]["exact_match,strict-match"] == pytest.approx(0.25)
    assert {s["resps"][0][0] for s in gen["samples"]["mdlm_probe_synth_gen"]} == {"x #### 80"}
    mc = lm_eval.simple_evaluate(model=MDLMProbeLM(pretrained=table, mc_num=32, mc_batch_size=16),
                                 tasks=["mdlm_probe_synth_mc"], task_manager=tm)
    assert mc["results"]["mdlm_probe_synth_mc"]["acc,none"] == pytest.approx(1.0)


def test_simple_evaluate_by_name_on_tiny_random(tiny_random):
    import lm_eval
    from lm_eval.tasks import TaskManager

    register()
    out = lm_eval.simple_evaluate(
        model="mdlm_probe", model_args="pretrained=tiny-random,gen_length=8,steps=8,block_length=8,mc_num=4,mc_batch_size=4",
        tasks=["mdlm_probe_synth_gen", "mdlm_probe_synth_mc"], device="cpu", log_samples=True,
        task_manager=TaskManager(include_path=str(TASKS), include_defaults=False))
    gen = out["samples"]["mdlm_probe_synth_gen"]
    assert len(gen) == 4 and 0.0 <= out["results"]["mdlm_probe_synth_gen"]["exact_match,strict-match"] <= 1.0
    direct = MDLMProbeLM(pretrained=tiny_random, gen_length=8, steps=8, block_length=8).generate_until(
        reqs(*[s["arguments"][0] for s in gen]))
    assert [s["resps"][0][0] for s in gen] == direct
    for s in out["samples"]["mdlm_probe_synth_mc"]:
        assert all(math.isfinite(r[0][0]) for r in s["resps"])


# ----------------------------------------------------------------------------------------- the CLI entry
@pytest.fixture
def no_default_tasks(monkeypatch):
    """lm-eval's CLI indexes its thousands of built-in tasks first (a minute on a busy CPU); skip that."""
    import lm_eval.tasks

    real = lm_eval.tasks.TaskManager
    monkeypatch.setattr(lm_eval.tasks, "TaskManager", lambda *a, **k: real(*a, **{**k, "include_defaults": False}))


def test_cli_lm_eval_runs_a_local_task(cli, tmp_path, no_default_tasks):
    code = cli("lm-eval", "--", "--model_args", "pretrained=tiny-random,gen_length=8,steps=8,block_length=8,mc_num=4",
               "--tasks", "mdlm_probe_synth_gen,mdlm_probe_synth_mc", "--include_path", str(TASKS),
               "--device", "cpu", "--limit", "2", "--output_path", str(tmp_path / "out"))
    assert code == 0
    (res,) = list((tmp_path / "out").rglob("results_*.json"))
    data = json.loads(res.read_text())
    assert set(data["results"]) == {"mdlm_probe_synth_gen", "mdlm_probe_synth_mc"}
    assert data["config"]["model"] == "mdlm_probe" and data["config"]["model_args"]["pretrained"] == "tiny-random"
    assert data["config"]["mdlm_probe_sampler"]["gen_length"] == 8  # from get_model_info


def test_cli_lm_eval_bad_checkpoint_is_one_line_exit_2(cli, capsys, no_default_tasks):
    code = cli("lm-eval", "--", "--model_args", "pretrained=no-such-ckpt", "--tasks", "mdlm_probe_synth_gen",
               "--include_path", str(TASKS), "--device", "cpu")
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("mdlm-probe: error:") and "no-such-ckpt" in last and "Traceback" not in err


def test_python_m_lm_eval_hands_over_to_lm_eval():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "mdlm_probe.cli.lm_eval", "--help"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "lm-eval" in r.stdout and "run" in r.stdout



DP_SCRIPT = """
import sys
import lm_eval.tasks
from mdlm_probe.cli.lm_eval import main

real = lm_eval.tasks.TaskManager  # skip indexing lm-eval's built-in tasks (slow); nothing else changes
lm_eval.tasks.TaskManager = lambda *a, **k: real(*a, **{**k, "include_defaults": False})
sys.exit(main(sys.argv[1:]))
"""


def _as_str(x):
    """lm-eval writes loglikelihood responses into samples_*.jsonl as strings: compare leaves as text."""
    return [_as_str(v) for v in x] if isinstance(x, (list, tuple)) else str(x)


@pytest.mark.slow
def test_data_parallel_two_cpu_processes_match_one(tmp_path, tiny_random):
    """The documented multi-GPU command on 2 CPU processes (torchrun + our lm-eval entry): each rank takes
    half the requests, and the gathered samples and metrics equal a single-process run."""
    import subprocess
    import sys

    import lm_eval
    from lm_eval.tasks import TaskManager

    args = "pretrained=tiny-random,gen_length=8,steps=8,block_length=8,mc_num=4,mc_batch_size=4"
    register()
    one = lm_eval.simple_evaluate(model="mdlm_probe", model_args=args, device="cpu", log_samples=True,
                                  tasks=["mdlm_probe_synth_gen", "mdlm_probe_synth_mc"],
                                  task_manager=TaskManager(include_path=str(TASKS), include_defaults=False))
    script = tmp_path / "dp.py"
    script.write_text(DP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                          "--model", "mdlm_probe", "--model_args", args, "--tasks", "mdlm_probe_synth_gen,mdlm_probe_synth_mc",
                          "--include_path", str(TASKS), "--log_samples", "--output_path", str(tmp_path / "out")],
                         env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "generate_until: 100%|██████████| 2/2" in two.stderr  # rank 0 decoded 2 of the 4 prompts
    (res,) = list((tmp_path / "out").rglob("results_*.json"))
    assert json.loads(res.read_text())["results"] == json.loads(json.dumps(one["results"], default=float))
    for task in ("mdlm_probe_synth_gen", "mdlm_probe_synth_mc"):
        (f,) = list((tmp_path / "out").rglob(f"samples_{task}_*.jsonl"))
        got = sorted((r["doc_id"], _as_str(r["resps"])) for r in map(json.loads, f.read_text().splitlines()))
        want = sorted((r["doc_id"], _as_str(r["resps"])) for r in one["samples"][task])
        assert got == want


# ----------------------------------------------------------------------------------------- offline
def test_cli_lm_eval_connection_error_is_one_line_exit_2(cli, capsys, monkeypatch):
    import lm_eval.__main__

    def unreachable():
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", unreachable)
    code = cli("lm-eval", "--", "--model_args", "pretrained=tiny-random", "--tasks", "gsm8k")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("mdlm-probe: error:") and "openai/gsm8k" in err and "docs/lm_eval.md" in err


@pytest.mark.slow
def test_cli_lm_eval_offline_hub_task_through_the_console_script(tmp_path):
    """lm-eval's own gsm8k task offline (its data is on the Hub): one line, exit 2, no traceback. No network:
    offline mode is set and the endpoint is a closed local port."""
    import shutil
    import subprocess
    import sys

    script = shutil.which("mdlm-probe", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    r = subprocess.run([script, "lm-eval", "--", "--model_args", "pretrained=tiny-random,gen_length=8,steps=8,block_length=8",
                        "--tasks", "gsm8k", "--limit", "1", "--device", "cpu"],
                       capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert last.startswith("mdlm-probe: error: lm-eval could not fetch") and "docs/lm_eval.md" in last


def test_lm_eval_task_on_local_files_as_documented(cli, tmp_path, no_default_tasks):
    """docs/lm_eval.md's recipe: a YAML that includes lm-eval's gsm8k task over local jsonl files runs offline."""
    import lm_eval

    rows = [{"question": f"Ann has {i} pens and gets 2 more. How many?", "answer": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(3)]
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "gsm8k_local.yaml").write_text(
        f"include: {Path(lm_eval.__file__).parent / 'tasks' / 'gsm8k' / 'gsm8k.yaml'}\n"
        "task: gsm8k_local\ndataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n"
        f"    train: {tmp_path / 'train.jsonl'}\n    test: {tmp_path / 'test.jsonl'}\n")
    code = cli("lm-eval", "--", "--model_args", "pretrained=tiny-random,gen_length=8,steps=8,block_length=8",
               "--include_path", str(tasks), "--tasks", "gsm8k_local", "--num_fewshot", "1", "--limit", "2",
               "--device", "cpu", "--output_path", str(tmp_path / "out"))
    assert code == 0
    (res,) = list((tmp_path / "out").rglob("results_*.json"))
    data = json.loads(res.read_text())
    assert "gsm8k_local" in data["results"] and data["n-samples"]["gsm8k_local"]["effective"] == 2
