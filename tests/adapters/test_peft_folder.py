"""A peft (LoRA) adapter folder loads in every command as its base checkpoint + the adapter.

The folders are written here directly with peft (random, non-zero LoRA weights), not by `train`, so the
loader is checked against peft's own unmerged forward: base + adapter through `load_model` must give the
logits of PeftModel(base) with the same `<slack>` rows added.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from arch_checkpoints import llada_arch_checkpoint
from mdlm_probe import load_model
from mdlm_probe.adapters import describe_checkpoint
from mdlm_probe.core.checkpoints import write_sidecar
from mdlm_probe.cli import main
from mdlm_probe.adapters.slack_token import add_slack_token

IDS = torch.tensor([[5, 17, 2, 2, 40, 2], [9, 9, 2, 33, 2, 2]])


def write_adapter(base, folder, slack: bool, sidecar: bool = True, base_name=None, targets=("q_proj", "v_proj")):
    """A LoRA folder on `base` as `train --lora` lays it out; returns the unmerged peft model (float64)."""
    from peft import LoraConfig, get_peft_model

    m = load_model(base, dtype="float64")
    side = {"name": folder.name, "adapter": m.adapter_name, "base_checkpoint": str(base_name or base),
            "mask_id": m.mask_id, "eos_id": m.eos_id, "objective": "ce", "lora": {"r": 4}}
    if slack:
        side["slack_id"] = add_slack_token(m.module, m.tokenizer)
        side["objective"] = "ctc+ce"
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), init_lora_weights=False)
    peft_model = get_peft_model(m.module, config)
    peft_model.save_pretrained(folder, save_embedding_layers=False)
    m.tokenizer.save_pretrained(folder)
    side["vocab_size"] = int(m.module.get_input_embeddings().weight.shape[0])
    if sidecar:
        write_sidecar(folder, side)
    return peft_model.eval(), side


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """LLaDA-architecture bases: 128 rows for 99 tokens (`<slack>` takes a spare row, as in LLaDA-8B), and 99
    rows (`<slack>` needs a new one: the embedding and head grow before the adapter loads)."""
    root = tmp_path_factory.mktemp("peft")
    return {"spare": llada_arch_checkpoint(root / "spare"), "grow": llada_arch_checkpoint(root / "grow", vocab_size=99)}


@pytest.fixture(scope="module")
def base(bases):
    return bases["spare"]


@pytest.mark.parametrize("slack,rows", [(False, "spare"), (True, "spare"), (True, "grow")])
def test_adapter_folder_loads_as_base_plus_adapter(tmp_path, bases, slack, rows):
    torch.set_num_threads(1)
    base = bases[rows]
    ref, side = write_adapter(base, tmp_path / "lora", slack)
    m = load_model(tmp_path / "lora", dtype="float64")
    assert m.adapter_name == "llada" and m.extra["base_checkpoint"] == str(base)
    assert not any("lora" in n for n, _ in m.module.named_parameters())  # merged into the plain module
    with torch.no_grad():
        want = ref(input_ids=IDS).logits
        got = m(IDS)
    assert torch.allclose(got, want, atol=1e-10)
    plain = load_model(base, dtype="float64")
    with torch.no_grad():
        assert not torch.allclose(plain(IDS), want[..., : plain.vocab_size], atol=1e-3)  # the adapter does change it
    if slack:
        sid = side["slack_id"]
        assert m.slack_id == sid and m.vocab_size == side["vocab_size"] == (100 if rows == "grow" else 128)
        assert m.tokenizer.convert_tokens_to_ids("<slack>") == sid
        assert sid not in m.special_drop_ids()  # the collapse map, not the drop list, removes it
    info = describe_checkpoint(tmp_path / "lora")
    assert info.adapter == "llada" and info.sidecar["base_checkpoint"] == str(base)


def test_without_a_sidecar_the_base_comes_from_adapter_config(tmp_path, base):
    ref, _ = write_adapter(base, tmp_path / "lora", slack=False, sidecar=False)
    assert json.loads((tmp_path / "lora" / "adapter_config.json").read_text())["base_model_name_or_path"]
    m = load_model(tmp_path / "lora", dtype="float64")
    with torch.no_grad():
        assert torch.allclose(m(IDS), ref(input_ids=IDS).logits, atol=1e-10)


def test_shipped_base_by_name(tmp_path):
    """base_checkpoint may be a shipped name (the tiny family: Gemma3 names)."""
    ref, _ = write_adapter("tiny-ce", tmp_path / "lora", slack=False)
    m = load_model(tmp_path / "lora", dtype="float64")
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(m(x), ref(input_ids=x).logits, atol=1e-10)


def test_generate_command_on_an_adapter_folder(tmp_path, base, capsys):
    write_adapter(base, tmp_path / "lora", slack=True)
    out = tmp_path / "samples.jsonl"
    args = ["generate", "--prompt", "1+2=", "--gen-length", "8", "--steps", "8", "--block-length", "8",
            "--no-chat", "--out", str(out)]
    assert main([*args, "--ckpt", str(tmp_path / "lora")]) == 0
    rec = json.loads(out.read_text().splitlines()[0])
    m = load_model(tmp_path / "lora")
    from mdlm_probe.decoding import SamplerConfig, generate

    direct = generate(m, ["1+2="], SamplerConfig(gen_length=8, steps=8, block_length=8))[0]
    assert rec["output_ids"] == direct["output_ids"]


def test_a_missing_base_is_one_line(tmp_path, base, capsys):
    gone = tmp_path / "gone"
    shutil.copytree(base, gone)
    write_adapter(gone, tmp_path / "lora", slack=False)
    shutil.rmtree(gone)
    capsys.readouterr()
    rc = main(["generate", "--ckpt", str(tmp_path / "lora"), "--prompt", "1+2=", "--no-chat"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "base checkpoint is missing" in err and str(gone) in err


def test_checkpoint_hash_covers_the_base(tmp_path, base):
    """Runs record checkpoint_hash: for a LoRA folder it must change with the base, not only the adapter."""
    from mdlm_probe.core.checkpoints import checkpoint_hash, read_sidecar

    write_adapter(base, tmp_path / "lora", slack=False)
    other = llada_arch_checkpoint(tmp_path / "other", seed=7)
    shutil.copytree(tmp_path / "lora", tmp_path / "lora2")
    write_sidecar(tmp_path / "lora2", {**read_sidecar(tmp_path / "lora"), "base_checkpoint": str(other)})
    assert checkpoint_hash(tmp_path / "lora") != checkpoint_hash(tmp_path / "lora2")
