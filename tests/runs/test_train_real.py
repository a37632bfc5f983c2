"""`train` on LLaDA- and Dream-shaped checkpoints (their real architectures, tests/helpers/arch_checkpoints.py, loaded
through `trust_remote_code`): LoRA and full fine-tuning, CE and CTC+CE, accelerate with 2 CPU processes,
resume, merge, the chat data path, and the bad settings that must be one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from arch_checkpoints import dream_arch_checkpoint, llada_arch_checkpoint
from mdlm_probe import load_model
from mdlm_probe.cli import main
from mdlm_probe.tasks.objectives import mask_canvas
from mdlm_probe.decoding import SamplerConfig, generate
from mdlm_probe.adapters.slack_token import add_slack_token
from mdlm_probe.runs.train import (TrainConfig, batch_loss, enable_grad_checkpointing, encode_pairs, init_model,
                                   load_pairs, make_batch, train)

ROOT = Path(__file__).resolve().parents[2]
BUILDERS = {"llada": llada_arch_checkpoint, "dream": dream_arch_checkpoint}
FAST = dict(batch_size=4, warmup=1, eval_n=0, save_every=1000)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    return {fam: build(root / fam) for fam, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Single-digit sums: every prompt has the same length (no padding), responses of 1-2 characters."""
    f = tmp_path_factory.mktemp("data") / "sums.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"{a}+{b}=", "response": str(a + b)}) + "\n"
                         for a in range(4) for b in range(4)))
    return f


def is_adapter(key: str) -> bool:
    """A LoRA matrix or a trainable-token row (<slack>'s, ctc+ce)."""
    return "lora_" in key or "trainable_tokens_delta" in key


def fixed_loss(model, cfg, examples) -> float:
    """The loss on one fixed batch and masking, for before/after comparisons."""
    batch = make_batch(model, cfg, 10_000, examples)
    noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss, _ = batch_loss(model, cfg, batch, noisy, masked, t, slice(None))
    return loss.item()


def base_weights(cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], object]:
    """The base's weights as training saw them before its first step (with <slack> added for ctc+ce)."""
    model = init_model(cfg)
    return {k: v.clone() for k, v in model.module.state_dict().items()}, model


# ----------------------------------------------------------------------------------------- LoRA and full
@pytest.mark.parametrize("fam", ["llada", "dream"])
@pytest.mark.parametrize("objective", ["ce", "ctc+ce"])
def test_lora_trains_only_the_adapter_and_lowers_the_loss(tmp_path, ckpts, data, fam, objective):
    torch.set_num_threads(1)
    cfg = TrainConfig(init=str(ckpts[fam]), data=str(data), objective=objective, lora=True, merge=True,
                      steps=25, lr=2e-2, lora_r=4, lora_alpha=8, **FAST)
    base, model = base_weights(cfg)
    examples, _ = encode_pairs(model, cfg, load_pairs(cfg.data))
    before = fixed_loss(model, cfg, examples)
    side = train(cfg, tmp_path / "run", progress=False)

    adapter = load_file(tmp_path / "run" / "adapter_model.safetensors")
    assert adapter and all(is_adapter(k) for k in adapter)  # the adapter folder holds adapter weights only
    assert side["adapter"] == fam and side["lora"]["r"] == 4 and side["merged"] is False
    assert json.loads((tmp_path / "run" / "merged" / "mdlm_probe.json").read_text())["merged"] is True

    merged = load_file(tmp_path / "run" / "merged" / "model.safetensors")
    targets = tuple(f".{n}.weight" for n in side["lora"]["target_modules"])
    head = "lm_head.weight" if fam == "dream" else "model.transformer.ff_out.weight"
    adapted = {k for k in base if k.endswith(targets) and k != head}  # LLaDA's head is also called ff_out
    rows = {f"{n}.weight" for n in side["lora"]["trainable_tokens"] or {}}  # ctc+ce: <slack>'s rows train too
    assert adapted and {k for k in base if not torch.equal(base[k], merged[k])} == adapted | rows  # nothing else
    for k in rows:
        moved = (base[k] != merged[k]).any(1).nonzero().flatten().tolist()
        assert moved == [side["slack_id"]], (k, moved)  # only <slack>'s row of the embedding and the head
    assert len(rows) == (2 if objective == "ctc+ce" else 0)

    after = fixed_loss(load_model(tmp_path / "run" / "merged"), cfg, examples)
    assert after < before * 0.9, (before, after)


@pytest.mark.parametrize("fam", ["llada", "dream"])
def test_full_fine_tuning_lowers_the_loss_and_saves_a_loadable_checkpoint(tmp_path, ckpts, data, fam):
    torch.set_num_threads(1)
    cfg = TrainConfig(init=str(ckpts[fam]), data=str(data), objective="ctc+ce", steps=25, lr=3e-3, **FAST)
    _, model = base_weights(cfg)
    examples, _ = encode_pairs(model, cfg, load_pairs(cfg.data))
    before = fixed_loss(model, cfg, examples)
    side = train(cfg, tmp_path / "run", progress=False)
    assert side["adapter"] == fam and side["lora"] is None and side["base_checkpoint"] == str(ckpts[fam])
    assert (tmp_path / "run" / f"modeling_{fam}_arch.py").is_file()  # trust_remote_code finds the classes
    trained = load_model(tmp_path / "run")
    assert trained.adapter_name == fam and trained.slack_id == side["slack_id"]
    assert fixed_loss(trained, cfg, examples) < before * 0.9


def test_dream_loss_is_the_hand_computed_loss_on_unshifted_targets(ckpts, data):
    """Dream's logits[:, i] predict token i + 1; through the adapter the objectives never see that shift."""
    cfg = TrainConfig(init=str(ckpts["dream"]), data=str(data), **FAST)
    model = init_model(cfg)
    examples, _ = encode_pairs(model, cfg, load_pairs(cfg.data))
    batch = make_batch(model, cfg, 3, examples)
    assert bool(batch["attn"].all())  # no padding: the raw call below sees the same canvas
    noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss, _ = batch_loss(model, cfg, batch, noisy, masked, t, slice(None))
        raw = model.module(noisy, "full").logits.double()  # (B, L, V): raw[:, i - 1] predicts token i
    hand = 0.0
    for b, i in masked.nonzero().tolist():
        hand += -raw[b, i - 1].log_softmax(-1)[batch["canvas"][b, i]].item() / t[b].item() / batch["R"]
    hand /= cfg.batch_size
    assert loss.item() == pytest.approx(hand, rel=1e-5)


# ----------------------------------------------------------------------------------------- engines
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_accelerate_equal_one_process(tmp_path, ckpts, data):
    """Same global batch: 2 gloo processes == 1 process with 2 accumulated micro-batches == 1 process, 1 batch."""
    args = ["train", "--init", str(ckpts["llada"]), "--data", str(data), "--objective", "ctc+ce", "--steps", "3",
            "--batch-size", "4", "--warmup", "1", "--lr", "1e-2", "--eval-n", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "analyses" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(_free_port()),
              "-m", "mdlm_probe"]
    p = subprocess.run([*launch, *args, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert main([*args, "--grad-accum", "2", "--out", str(tmp_path / "accum")]) == 0
    assert main([*args, "--out", str(tmp_path / "one")]) == 0

    runs = ("two", "accum", "one")
    logs = {d: [json.loads(x) for x in open(tmp_path / d / "train_log.jsonl")] for d in runs}
    weights = {d: load_file(tmp_path / d / "model.safetensors") for d in runs}
    assert [r["step"] for r in logs["one"]] == [0, 1, 2]
    for d in ("two", "accum"):
        for a, b in zip(logs[d], logs["one"], strict=True):
            assert a["ce"] == pytest.approx(b["ce"], rel=1e-5) and a["ctc"] == pytest.approx(b["ctc"], rel=1e-5)
        assert weights[d].keys() == weights["one"].keys()
        for k in weights["one"]:
            torch.testing.assert_close(weights[d][k], weights["one"][k], rtol=1e-5, atol=1e-6)
    training = {d: json.loads((tmp_path / d / "mdlm_probe.json").read_text())["training"] for d in runs}
    assert [(t["num_processes"], t["micro_batch"]) for t in training.values()] == [(2, 2), (1, 2), (1, 4)]


def test_a_killed_lora_run_resumes_to_the_same_adapter(tmp_path, ckpts, data):
    torch.set_num_threads(1)
    cfg = dict(init=str(ckpts["dream"]), data=str(data), objective="ctc+ce", lora=True, steps=6, lr=1e-2,
               lora_dropout=0.1, **{**FAST, "save_every": 2})
    train(TrainConfig(**cfg), tmp_path / "full", progress=False)
    part = train(TrainConfig(**cfg), tmp_path / "killed", progress=False, stop_after=3)  # saved at step 2
    assert part["step"] == 3 and torch.load(tmp_path / "killed" / "last.pt", weights_only=False)["step"] == 2
    assert all(is_adapter(k) for k in torch.load(tmp_path / "killed" / "last.pt", weights_only=False)["model"])
    train(TrainConfig(**cfg), tmp_path / "killed", progress=False)
    a = load_file(tmp_path / "full" / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / "adapter_model.safetensors")
    # bit-equal on purpose: the same steps with the same kernels, shapes and threads in one process
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("init,how", [("llada", "blocks"), ("tiny-ce", "transformers")])
def test_gradient_checkpointing_gives_the_same_weights(tmp_path, ckpts, data, init, how):
    """Remote code without transformers' support gets its blocks recomputed; the tiny Gemma3 uses transformers'."""
    torch.set_num_threads(1)
    cfg = dict(init=str(ckpts.get(init, init)), data=str(data), steps=2, lr=1e-2, **FAST)
    train(TrainConfig(**cfg), tmp_path / "plain", progress=False)
    side = train(TrainConfig(**cfg, grad_checkpointing=True), tmp_path / "ckpt", progress=False)
    assert side["training"]["grad_checkpointing"] == how
    a, b = load_file(tmp_path / "plain" / "model.safetensors"), load_file(tmp_path / "ckpt" / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-7)


def test_checkpointed_blocks_run_again_in_the_backward_pass(ckpts, data):
    cfg = TrainConfig(init=str(ckpts["llada"]), data=str(data), **FAST)
    model = init_model(cfg)
    blocks = model.module.model.transformer.blocks
    calls = []
    for i, b in enumerate(blocks):
        b.forward = (lambda f, i: lambda *a, **k: (calls.append(i), f(*a, **k))[1])(b.forward, i)
    assert enable_grad_checkpointing(model.module) == "blocks"
    model.module.train()
    examples, _ = encode_pairs(model, cfg, load_pairs(cfg.data))
    batch = make_batch(model, cfg, 0, examples)
    noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, torch.Generator().manual_seed(0))
    loss, _ = batch_loss(model, cfg, batch, noisy, masked, t, slice(None))
    assert calls == list(range(len(blocks)))
    loss.backward()
    assert calls == list(range(len(blocks))) + list(range(len(blocks)))[::-1]  # recomputed, last block first


# ----------------------------------------------------------------------------------------- outputs
def test_merged_checkpoint_and_base_plus_adapter_generate_the_same(tmp_path, ckpts, data):
    from peft import PeftModel

    torch.set_num_threads(1)
    cfg = TrainConfig(init=str(ckpts["llada"]), data=str(data), objective="ctc+ce", lora=True, merge=True,
                      steps=4, lr=2e-2, **FAST)
    side = train(cfg, tmp_path / "run", progress=False)
    merged = load_model(tmp_path / "run" / "merged", dtype="float64")
    base = load_model(ckpts["llada"], dtype="float64")
    assert add_slack_token(base.module, base.tokenizer) == side["slack_id"]
    base.module = PeftModel.from_pretrained(base.module, tmp_path / "run").eval()
    base.slack_id = side["slack_id"]
    sampler = SamplerConfig(gen_length=8, steps=8, block_length=8)
    prompts = ["1+2=", "3+3="]
    a = [r["output_ids"] for r in generate(merged, prompts, sampler)]
    b = [r["output_ids"] for r in generate(base, prompts, sampler)]
    folder = load_model(tmp_path / "run", dtype="float64")  # what every command's --ckpt of the folder loads
    c = [r["output_ids"] for r in generate(folder, prompts, sampler)]
    assert a == b == c
    ids = torch.tensor([merged.tokenizer("1+2=", add_special_tokens=False)["input_ids"] + [merged.mask_id] * 3])
    with torch.no_grad():  # and the adapter is not a no-op: the merged model's logits are not the base's
        plain = load_model(ckpts["llada"], dtype="float64")
        add_slack_token(plain.module, plain.tokenizer)
        assert not torch.allclose(merged.forward(ids), plain.forward(ids))
        torch.testing.assert_close(merged.forward(ids), base.forward(ids), rtol=0, atol=1e-5)  # float32 merge


def test_slack_round_trips_through_save_and_load(tmp_path, ckpts, data):
    from transformers import AutoTokenizer

    cfg = TrainConfig(init=str(ckpts["dream"]), data=str(data), objective="ctc+ce", steps=1, **FAST)
    side = train(cfg, tmp_path / "run", progress=False)
    tok = AutoTokenizer.from_pretrained(tmp_path / "run")
    sid = side["slack_id"]
    assert tok.convert_tokens_to_ids("<slack>") == sid
    assert tok("7<slack>", add_special_tokens=False)["input_ids"][-1] == sid
    assert tok.decode([sid]) == "<slack>"
    model = load_model(tmp_path / "run")
    assert model.slack_id == sid and model.vocab_size == side["vocab_size"]


# ----------------------------------------------------------------------------------------- chat data
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_chat_records_are_rendered_with_the_checkpoints_template(tmp_path, ckpts):
    from transformers import AutoTokenizer

    folder = tmp_path / "chatty"
    folder.mkdir()
    for f in ckpts["llada"].iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    f = tmp_path / "chat.jsonl"
    msgs = [{"role": "system", "content": "Add."}, {"role": "user", "content": "2+3="},
            {"role": "assistant", "content": "5"}, {"role": "user", "content": "thanks"}]
    f.write_text(json.dumps({"messages": msgs}) + "\n")
    cfg = TrainConfig(init=str(folder), data=str(f), chat=True, **FAST)
    model = init_model(cfg)
    (prompt, target), = encode_pairs(model, cfg, load_pairs(cfg.data, chat=True))[0]
    assert model.tokenizer.decode(prompt) == "<|system|>Add.\n<|user|>2+3=\n<|assistant|>"
    assert target == model.tokenizer("5", add_special_tokens=False)["input_ids"] + [model.eos_id]
    batch = make_batch(model, cfg, 0, [(prompt, target)])
    assert batch["R"] == len(target)  # each batch's longest response + EOS, as LLaDA's SFT pads


def test_responses_past_the_canvas_are_cut_or_left_out_and_counted(tmp_path, ckpts):
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps({"prompt": "q", "response": r}) + "\n" for r in ("1", "22", "333")))
    cfg = dict(init=str(ckpts["llada"]), data=str(f), **FAST)
    model = init_model(TrainConfig(**cfg))
    pairs = load_pairs(str(f))  # prompts "q\n": 2 tokens; targets 2, 3 and 4 tokens with EOS
    cut, info = encode_pairs(model, TrainConfig(**cfg, max_length=5), pairs)
    assert [len(p) + len(t) for p, t in cut] == [4, 5, 5] and info["responses_cut"] == 1
    kept, info = encode_pairs(model, TrainConfig(**cfg, response_length=3), pairs)
    assert [len(t) for _, t in kept] == [2, 3] and info["responses_left_out"] == 1


# ----------------------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("extra,needle", [
    (["--init", "tiny", "--lora"], "--lora adapts a trained checkpoint"),
    (["--grad-accum", "0"], "grad-accum"),
    (["--batch-size", "3", "--grad-accum", "2"], "does not split"),
    (["--max-length", "3"], "max-length 3 is shorter than prompt"),
    (["--chat"], "no chat template"),
    (["--lora", "--lora-targets", "q_proj,nope"], "nope name no linear layer"),
    (["--merge"], "needs --lora"),
    (["--dtype", "float16"], "unknown dtype"),
])
def test_impossible_settings_are_one_line(tmp_path, ckpts, data, capsys, extra, needle):
    args = ["train", "--init", str(ckpts["llada"]), "--data", str(data), "--steps", "1", "--eval-n", "0", *extra]
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.strip().count("\n") == 0, err


def test_data_without_the_needed_fields(tmp_path, ckpts, capsys):
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    base = ["train", "--init", str(ckpts["llada"]), "--data", str(f), "--out", str(tmp_path / "x")]
    assert main(base) == 2 and "pass --chat" in capsys.readouterr().err
    assert main([*base, "--chat"]) == 2 and "need an assistant turn" in capsys.readouterr().err
    f.write_text(json.dumps({"prompt": "hi"}) + "\n")
    assert main(base) == 2 and "no messages, question/prompt or answer/response" in capsys.readouterr().err


def test_an_fsdp_config_on_cpu_is_one_line(tmp_path, ckpts, data):
    """What `accelerate launch --config_file analyses/accelerate/fsdp_8gpu.yaml` tells the process, on a CPU."""
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", "train", "--init", str(ckpts["llada"]), "--data", str(data),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "ACCELERATE_USE_FSDP": "true", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2 and "FSDP" in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr
