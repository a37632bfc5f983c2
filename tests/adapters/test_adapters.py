"""The real-model adapters (llada, dream, mdlm, masked-lm), end to end through `mdlm-probe generate`.

Nothing is downloaded: each test checkpoint is written to a temp folder with random weights and a local
tokenizer. The remote-code families get a small modeling file (tests/fixtures/remote_models/) and an
`auto_map` in config.json, so loading goes through the real `trust_remote_code=True` path. LLaDA's stand-in
has the published file's transformers-4 traits, so it loads only through the adapter's compatibility layer.
Also here: batch invariance over every adapter, refusal of checkpoints missing weights, special tokens in
scored text.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mdlm_probe.adapters import detect_adapter, load_model  # noqa: E402
from mdlm_probe.adapters.compat import legacy_rope  # noqa: E402
from mdlm_probe.cli import main  # noqa: E402
from mdlm_probe.core.exceptions import BadInput  # noqa: E402
from mdlm_probe.core.records import read_records  # noqa: E402
from mdlm_probe.decoding import SamplerConfig, generate  # noqa: E402
from standins import (DREAM_SPECIALS, LLADA_SPECIALS, bert_checkpoint,  # noqa: E402
                      char_tokenizer, masked_lm_checkpoint, remote_checkpoint)

GEN = ["--gen-length", "8", "--steps", "8", "--block-length", "8"]


# ----------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    out = {}
    # LLaDA: the tokenizer names no mask role; the adapter finds <|mdm_mask|> (id 2) in its vocabulary.
    # A trained model never proposes the mask; the bias stands in for that.
    tok = char_tokenizer(LLADA_SPECIALS, eos_token="<|endoftext|>")
    out["llada"] = remote_checkpoint(root / "tiny-llada", "llada", {"model_type": "llada", "vocab_size": 128}, tok,
                                     {2: -1e4})
    # LLaDA with nothing that names a mask: 126336 is outside its vocabulary.
    tok = char_tokenizer(["<|endoftext|>"], eos_token="<|endoftext|>")
    out["llada_nomask"] = remote_checkpoint(root / "llada-nomask", "llada", {"model_type": "llada", "vocab_size": 128},
                                            tok, {})
    # Dream: mask and pad ids in config.json, as Dream's config has them.
    tok = char_tokenizer(DREAM_SPECIALS, eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mask|>")
    out["dream"] = remote_checkpoint(root / "tiny-dream", "dream",
                                     {"model_type": "Dream", "vocab_size": 112, "mask_token_id": 2, "pad_token_id": 0,
                                      "eos_token_id": 0}, tok, {2: -1e4})
    # MDLM: a GPT-2-sized vocabulary (50257 tokens, EOS last) and one extra model id, 50257, for the mask.
    # The raw model prefers the mask everywhere; the adapter must never let it be proposed.
    tok = char_tokenizer([], fill_to=50257, eos_token="<|endoftext|>")
    out["mdlm"] = remote_checkpoint(root / "tiny-mdlm", "mdlm", {"model_type": "mdlm", "vocab_size": 50258}, tok,
                                    {50257: 1e4}, auto_key="AutoModelForMaskedLM")
    # A BERT masked LM with its own [MASK] (raw model prefers it, too).
    out["bert"] = bert_checkpoint(root / "tiny-bert", with_mask=True)
    out["bert_nomask"] = bert_checkpoint(root / "bert-nomask", with_mask=False)
    # A sentence-embedding-style checkpoint: a plain BertModel, no MLM head.
    out["bert_headless"] = bert_checkpoint(root / "bert-headless", with_mask=True, head=False)
    # Masked LMs with other position schemes: RoBERTa (absolute, numbered from padding_idx + 1) and
    # ModernBERT (rotary).
    out["roberta"] = masked_lm_checkpoint(root / "tiny-roberta", "roberta")
    out["modernbert"] = masked_lm_checkpoint(root / "tiny-modernbert", "modernbert")
    # Dream's file as published for transformers 4 (rotary from ROPE_INIT_FUNCTIONS["default"], frequencies in a
    # non-persistent buffer).
    tok = char_tokenizer(DREAM_SPECIALS, eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mask|>")
    out["dream_v4"] = remote_checkpoint(root / "tiny-dream-v4", "dream_v4",
                                        {"model_type": "Dream", "vocab_size": 112, "mask_token_id": 2,
                                         "pad_token_id": 0, "eos_token_id": 0}, tok, {2: -1e4})
    # LLaDA with weight tying: like a tied checkpoint, it does not store the output layer; the model file's
    # own tie_weights() (the transformers 4 signature) fills it.
    tok = char_tokenizer(LLADA_SPECIALS, eos_token="<|endoftext|>")
    out["llada_tied"] = remote_checkpoint(root / "llada-tied", "llada", {"model_type": "llada", "vocab_size": 128,
                                                                         "weight_tying": True}, tok, {2: -1e4},
                                          drop=("model.head.weight",))
    return out


def gen(ckpt: Path, out: Path, *extra: str, prompts=("Ann has 10 pens.",)) -> int:
    args = ["generate", "--ckpt", str(ckpt), *GEN, "--out", str(out), *extra]
    for p in prompts:
        args += ["--prompt", p]
    return main(args)


# ----------------------------------------------------------------------------------------- end to end, per family
def test_llada_end_to_end(ckpts, tmp_path):
    m = load_model(ckpts["llada"])
    assert m.adapter_name == "llada"
    assert (m.mask_id, m.eos_id, m.eot_id) == (2, 0, 1)  # found by token name, not the 8B defaults
    out = tmp_path / "g.jsonl"
    # Two prompts of different lengths: the left-padded batch goes in with a (B, L) mask, as LLaDA takes it.
    assert gen(ckpts["llada"], out, "--device", "cpu", prompts=("Ann has 10 pens.", "Hi")) == 0
    recs, bad = read_records(out)
    assert bad == 0 and len(recs) == 2
    for r in recs:
        assert len(r["output_ids"]) == 8 and 2 not in r["output_ids"]
        assert all(0 <= c < 8 for c in r["trajectory"]["commit_step"])


def test_dream_shift_and_padding(ckpts, tmp_path):
    m = load_model(ckpts["dream"])
    assert m.adapter_name == "dream" and (m.mask_id, m.pad_id, m.eos_id, m.eot_id) == (2, 0, 0, 1)
    ids = torch.tensor([[5, 6, 7, 2, 2, 2]])
    raw = m.module(ids, "full", None).logits
    got = m(ids)
    # bit-equal: m(ids) runs the same module on the same ids (same kernels, same shapes), then only moves rows
    assert torch.equal(got[:, 0], raw[:, 0])  # position 0 keeps its own logits
    assert torch.equal(got[:, 1:], raw[:, :-1])  # token i is predicted from position i - 1
    assert not torch.equal(got, raw)
    # Left padding: Dream's (B, 1, L, L) mask and positions counted over real tokens make the padded
    # row decode exactly as the prompt alone does.
    cfg = SamplerConfig(gen_length=8, steps=8, block_length=8, batch_size=2)
    alone = generate(m, ["Hi"], cfg)[0]["output_ids"]
    padded = generate(m, ["Ann has 10 pens.", "Hi"], cfg)[1]["output_ids"]
    assert padded == alone
    assert gen(ckpts["dream"], tmp_path / "g.jsonl") == 0
    assert len(read_records(tmp_path / "g.jsonl")[0][0]["output_ids"]) == 8


def test_mdlm_never_predicts_the_mask(ckpts, tmp_path):
    m = load_model(ckpts["mdlm"])
    assert m.adapter_name == "mdlm" and (m.mask_id, m.eos_id, m.vocab_size) == (50257, 50256, 50258)
    assert m.tokenizer.mask_token_id == 50257  # named so a left-over mask shows in raw text
    ids = torch.tensor([[40, 41, 50257, 50257]])
    raw, _ = m.module.backbone(ids, torch.zeros(1))
    assert bool((raw.argmax(-1) == 50257).all())  # the raw model would propose the mask everywhere
    logits = m(ids)
    assert bool(torch.isneginf(logits[..., 50257]).all())
    assert torch.equal(logits[..., :50257], raw[..., :50257])  # the same backbone call; only the mask's column edited
    assert gen(ckpts["mdlm"], tmp_path / "g.jsonl", "--no-chat") == 0
    rec = read_records(tmp_path / "g.jsonl")[0][0]
    assert len(rec["output_ids"]) == 8 and 50257 not in rec["output_ids"]


def test_masked_lm_end_to_end(ckpts, tmp_path):
    m = load_model(ckpts["bert"])
    assert m.adapter_name == "masked-lm" and (m.mask_id, m.eos_id, m.pad_id) == (4, 3, 0)  # [MASK], [SEP], [PAD]
    ids = torch.tensor([[10, 11, 4, 4]])
    assert bool((m.module(input_ids=ids).logits.argmax(-1) == 4).all())  # the raw model prefers [MASK]
    assert bool(torch.isneginf(m(ids)[..., 4]).all())  # checked first: a proposed [MASK] would never fill
    assert gen(ckpts["bert"], tmp_path / "g.jsonl", prompts=("Ann has 10 pens.", "Hi")) == 0
    recs = read_records(tmp_path / "g.jsonl")[0]
    assert len(recs) == 2 and all(len(r["output_ids"]) == 8 and 4 not in r["output_ids"] for r in recs)


def test_forced_adapter_matches_detection(ckpts, tmp_path):
    assert gen(ckpts["bert"], tmp_path / "g.jsonl", "--adapter", "masked-lm") == 0


def test_generate_in_a_fresh_process_offline(ckpts, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    out = tmp_path / "g.jsonl"
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", "generate", "--ckpt", str(ckpts["llada"]), *GEN,
                        "--prompt", "Ann has 10 pens.", "--out", str(out)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert len(read_records(out)[0]) == 1
    assert (tmp_path / "modules").is_dir()  # the remote modeling code really was imported


# ----------------------------------------------------------------------------------------- detection
REAL_CONFIGS = {  # the identifying keys of the published config.json files
    "llada": {"model_type": "llada", "architectures": ["LLaDAModelLM"],
              "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"}},
    "llada-moe": {"model_type": "lladamoe", "architectures": ["LLaDAMoEModelLM"]},
    "dream": {"model_type": "Dream", "architectures": ["DreamModel"],
              "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"}},
    "mdlm": {"model_type": "mdlm", "architectures": ["MDLM"],
             "auto_map": {"AutoConfig": "configuration_mdlm.MDLMConfig", "AutoModelForMaskedLM": "modeling_mdlm.MDLM"}},
    "bert": {"model_type": "bert", "architectures": ["BertForMaskedLM"]},
    "modernbert": {"model_type": "modernbert", "architectures": ["ModernBertForMaskedLM"]},
}
EXPECTED = {"llada": "llada", "llada-moe": "llada", "dream": "dream", "mdlm": "mdlm", "bert": "masked-lm",
            "modernbert": "masked-lm"}


@pytest.mark.parametrize("name", sorted(REAL_CONFIGS))
def test_detects_real_configs(name, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(REAL_CONFIGS[name]))
    assert detect_adapter(tmp_path, None) == EXPECTED[name]


def test_undetectable_config_is_bad_input(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(BadInput, match="--adapter"):
        detect_adapter(tmp_path, None)


# ----------------------------------------------------------------------------------------- errors: exit 2, one line
@pytest.mark.parametrize("case, args, expect", [
    ("bert_nomask", [], "no mask token"),
    ("llada_nomask", [], "no mask token"),
    ("bert", ["--adapter", "dream"], "does not fit"),  # BERT config: belongs to masked-lm
    ("llada", ["--adapter", "mdlm"], "does not fit"),  # a LLaDA config is not an MDLM
    ("tiny-random", ["--adapter", "llada"], "does not fit"),  # the project's own checkpoint
    ("tiny-random", ["--adapter", "masked-lm"], "does not fit"),
    # these stand-ins are not laid out like LLaDA/Dream, so their adapters refuse the cache (with the reason)
    ("dream", ["--cache", "prefix"], "KV cache"),
    ("llada", ["--cache", "dual"], "KV cache"),
])
def test_bad_checkpoint_or_adapter_exits_2(ckpts, tmp_path, capsys, case, args, expect):
    ckpt = "tiny-random" if case == "tiny-random" else str(ckpts[case])
    capsys.readouterr()
    assert gen(ckpt, tmp_path / "g.jsonl", *args) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and err.count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "g.jsonl").exists()


def test_unfit_module_is_caught_by_the_probe(ckpts, tmp_path, capsys):
    # No family in the config: --adapter dream is allowed to try, and fails on the call (BERT takes no
    # "full" mask string), not later inside the sampler.
    folder = tmp_path / "anon"
    shutil.copytree(ckpts["bert"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["SomethingElse"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BadInput, match="adapter 'dream' does not fit"):
        load_model(folder, adapter="dream")


# ----------------------------------------------------------------------------------------- batch invariance
PROMPTS = ("Ann has 10 pens.", "Hi", "What is 12 * 7?")  # different lengths: the short ones are left-padded
INVARIANT = ["local", "llada", "dream", "dream_v4", "bert", "roberta", "modernbert"]


@pytest.mark.parametrize("name", INVARIANT + ["mdlm"])
def test_a_prompt_decodes_the_same_alone_and_in_a_padded_batch(ckpts, name, caplog):
    """Every adapter: a prompt's tokens do not depend on the other prompts of its batch (position ids count real
    tokens, padding is masked), or, where the family cannot (MDLM attends padding), the adapter says so at load."""
    with caplog.at_level(logging.WARNING, logger="mdlm_probe.adapters.hf"):
        m = load_model("tiny-random" if name == "local" else ckpts[name])
    warned = [r.getMessage() for r in caplog.records if "--batch-size 1" in r.getMessage()]
    cfg = SamplerConfig(gen_length=8, steps=8, block_length=8, batch_size=1)
    alone = [generate(m, [p], cfg)[0]["output_ids"] for p in PROMPTS]
    batched = [r["output_ids"] for r in generate(m, list(PROMPTS), replace(cfg, batch_size=len(PROMPTS)))]
    if name in INVARIANT:
        assert batched == alone
        assert m.extra["batch_invariant"] is True and not warned
    else:
        assert m.extra["batch_invariant"] is False
        assert len(warned) == 1 and "\n" not in warned[0] and "attention mask" in warned[0]
        assert batched != alone  # the warning is true here: padding changed the short prompts' tokens


def test_masked_lm_position_ids_count_real_tokens(ckpts):
    # BERT numbers positions from 0, RoBERTa from padding_idx + 1 (padding at padding_idx), as RoBERTa does.
    am = torch.tensor([[0, 0, 1, 1, 1]])
    for name, want in (("bert", [[0, 0, 0, 1, 2]]), ("roberta", [[0, 0, 1, 2, 3]])):
        m = load_model(ckpts[name])
        seen = {}
        handle = m.module.register_forward_pre_hook(lambda mod, a, kw: seen.update(kw), with_kwargs=True)
        m(torch.tensor([[0, 0, 10, 11, 4]]), attention_mask=am)
        handle.remove()
        assert seen["position_ids"].tolist() == want


# ----------------------------------------------------------------------------------------- missing weights
def test_headless_checkpoint_exits_2_naming_the_missing_weights(ckpts, tmp_path, capsys):
    capsys.readouterr()
    assert gen(ckpts["bert_headless"], tmp_path / "g.jsonl", "--adapter", "masked-lm") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "lacks weights" in err and "cls.predictions" in err and "--allow-missing-weights" in err
    assert not (tmp_path / "g.jsonl").exists()


def test_allowed_missing_weights_are_seeded_and_recorded(ckpts, tmp_path):
    a = load_model(ckpts["bert_headless"], adapter="masked-lm", allow_missing_weights=True)
    torch.manual_seed(123)
    b = load_model(ckpts["bert_headless"], adapter="masked-lm", allow_missing_weights=True)
    assert "cls.predictions.transform.dense.weight" in a.extra["missing_weights"]
    assert a.extra["init_seed"] == b.extra["init_seed"]
    head_a, head_b = a.module.cls.predictions.transform.dense.weight, b.module.cls.predictions.transform.dense.weight
    assert torch.equal(head_a, head_b)  # two runs get the same head: their records can be paired
    ids = torch.tensor([[10, 11, 4, 4]])
    assert torch.equal(a(ids), b(ids))  # equal weights, same kernels, same shapes: the same bits
    outs = []
    for i in range(2):
        assert gen(ckpts["bert_headless"], tmp_path / f"g{i}.jsonl", "--adapter", "masked-lm",
                   "--allow-missing-weights") == 0
        outs.append(read_records(tmp_path / f"g{i}.jsonl")[0][0]["output_ids"])
    assert outs[0] == outs[1]


@pytest.mark.parametrize("command", ["eval", "shift"])
def test_eval_and_shift_refuse_or_record_missing_weights(ckpts, tmp_path, capsys, command):
    """The run commands load the same way as generate: refused without the flag, recorded in config.json with it."""
    args = [command] + (["synthetic"] if command == "eval" else ["--fractions", "0,0.5"]) + [
        "--ckpt", str(ckpts["bert_headless"]), "--adapter", "masked-lm", "--limit", "2", "--gen-length", "8",
        "--steps", "8", "--block-length", "8", "--no-chat"]
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cls.predictions" in err
    # the refused attempt wrote no result, so the same --out takes the run with the flag (no --overwrite)
    assert main(args + ["--out", str(tmp_path / "refused"), "--allow-missing-weights"]) == 0
    config = json.loads((tmp_path / "refused" / "config.json").read_text())
    assert config["allow_missing_weights"] is True
    records = read_records(tmp_path / "refused" / ("samples.jsonl" if command == "eval" else "shift.jsonl"))[0]
    assert records and all(r["ckpt"] for r in records)


def test_complete_checkpoints_record_no_missing_weights(ckpts):
    for name in ("llada", "dream", "dream_v4", "mdlm", "bert", "roberta", "modernbert"):
        assert "missing_weights" not in load_model(ckpts[name]).extra, name
    assert "missing_weights" not in load_model("tiny-random").extra


@pytest.mark.parametrize("family", ["local", "llada", "dream", "mdlm"])
def test_any_adapter_refuses_a_checkpoint_missing_a_weight(ckpts, tmp_path, capsys, family):
    from safetensors.torch import load_file, save_file

    from mdlm_probe.core.checkpoints import resolve

    folder = tmp_path / family
    shutil.copytree(resolve("tiny-random") if family == "local" else ckpts[family], folder)
    weights = load_file(folder / "model.safetensors")
    gone = sorted(k for k in weights if k.endswith("norm.weight") or k.endswith("ln2.weight"))[0]
    save_file({k: v for k, v in weights.items() if k != gone}, folder / "model.safetensors", metadata={"format": "pt"})
    capsys.readouterr()
    assert gen(folder, tmp_path / "g.jsonl", "--no-chat") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lacks weights" in err and gone in err


# ----------------------------------------------------------------------------------------- special tokens
def test_special_tokens_are_removed_for_scoring_not_from_raw_text(ckpts):
    from mdlm_probe.core.records import decode_output

    m = load_model(ckpts["bert"])
    cls_, unk, pad, mask = (m.tokenizer.convert_tokens_to_ids(t) for t in ("[CLS]", "[UNK]", "[PAD]", "[MASK]"))
    h, i = m.tokenizer.convert_tokens_to_ids(["H", "i"])
    out = decode_output(m, [cls_, h, unk, i, pad, mask, m.eos_id, h], "surface")
    assert out["text"] == out["text_surface"] == out["text_ctc"] == "Hi"
    assert "[CLS]" in out["raw_text"] and "[UNK]" in out["raw_text"]


# ------------------------------------------------------------------------- LLaDA's file under transformers 5
def test_llada_stand_in_has_the_published_files_traits(ckpts):
    """The stand-in breaks plain transformers 5 loading the way LLaDA's modeling_llada.py does, so the adapter
    tests above load it only through the compatibility layer."""
    from transformers import AutoConfig, AutoModel, PreTrainedModel

    if hasattr(PreTrainedModel, "get_expanded_tied_weights_keys"):  # transformers 5
        with pytest.raises(AttributeError, match="all_tied_weights_keys"):
            AutoModel.from_pretrained(ckpts["llada"], trust_remote_code=True)
        assert not hasattr(AutoConfig.from_pretrained(ckpts["llada"], trust_remote_code=True), "use_cache")
    else:  # transformers 4, which the file was written for, loads it as published
        AutoModel.from_pretrained(ckpts["llada"], trust_remote_code=True)
    m = load_model(ckpts["llada"])
    assert m.module.config.use_cache is False  # restored from config.json, read by forward


def test_llada_tied_checkpoint_is_tied_by_its_own_tie_weights(ckpts):
    m = load_model(ckpts["llada_tied"])
    assert m.module.model.head.weight is m.module.model.tok.weight
    assert "missing_weights" not in m.extra  # tied, so not missing
    assert len(generate(m, ["Hi"], SamplerConfig(gen_length=8, steps=8, block_length=8))[0]["output_ids"]) == 8


def test_dream_v4_file_gets_its_rotary_frequencies(ckpts):
    """Dream's transformers 4 rotary: built (no KeyError on "default") and its non-persistent frequencies filled,
    so the loaded model computes what the same weights do in a module built directly (no meta device)."""
    from safetensors.torch import load_file

    m = load_model(ckpts["dream_v4"])
    hd = 32 // 4
    assert torch.allclose(m.module.rotary.inv_freq, 1.0 / 10000.0 ** (torch.arange(0, hd, 2).float() / hd))
    with legacy_rope():
        ref = type(m.module).__mro__[1](m.module.config)  # the file's own class, built in plain torch
    ref.load_state_dict(load_file(ckpts["dream_v4"] / "model.safetensors"))
    ids = torch.tensor([[5, 9, 30, 2, 2, 2]])
    assert torch.allclose(m.module(ids, "full", None).logits, ref.eval()(ids, "full", None).logits, atol=1e-5)
