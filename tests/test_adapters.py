"""The real-model adapters (llada, dream, mdlm, masked-lm), end to end through `mdlm-probe generate`.

Nothing is downloaded: each test checkpoint is written to a temp folder with random weights and a local
tokenizer. The remote-code families get a small modeling file (tests/fixtures/remote_models/) and an
`auto_map` in config.json, so loading goes through the real `trust_remote_code=True` path.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mdlm_probe.adapters import detect_adapter, load_model  # noqa: E402
from mdlm_probe.cli import main  # noqa: E402
from mdlm_probe.errors import BadInput  # noqa: E402
from mdlm_probe.records import read_records  # noqa: E402
from mdlm_probe.sampler import SamplerConfig, generate  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "remote_models"
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
GEN = ["--gen-length", "8", "--steps", "8", "--block-length", "8"]


# ----------------------------------------------------------------------------------------- building checkpoints
def char_tokenizer(specials: list[str], fill_to: int = 0, **roles: str):
    """Character-level tokenizer: `specials` first, then printable characters, then fillers up to `fill_to`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    toks = specials + CHARS
    toks += [f"<|f{i}|>" for i in range(fill_to - len(toks) - ("<|endoftext|>" in roles.values()))]
    if fill_to and "<|endoftext|>" in roles.values():
        toks.append("<|endoftext|>")  # GPT-2 style: EOS is the last id
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(toks)}, unk_token=toks[0]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, padding_side="left",
                                   additional_special_tokens=[s for s in specials if s not in roles.values()],
                                   **roles)


def remote_checkpoint(folder: Path, family: str, config: dict, tok, bias: dict[int, float], auto_key="AutoModel"):
    """A random-weight checkpoint whose modeling code is loaded with trust_remote_code."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    folder.mkdir(parents=True)
    for f in ("tiny_encoder.py", f"modeling_tiny_{family}.py"):
        shutil.copy(FIXTURES / f, folder / f)
    cls, cfg_cls = {"llada": ("TinyLLaDAModelLM", "TinyLLaDAConfig"), "dream": ("TinyDreamModel", "TinyDreamConfig"),
                    "mdlm": ("TinyMDLM", "TinyMDLMConfig")}[family]
    mod = f"modeling_tiny_{family}"
    config = {**config, "architectures": [cls], "auto_map": {"AutoConfig": f"{mod}.{cfg_cls}", auto_key: f"{mod}.{cls}"}}
    (folder / "config.json").write_text(json.dumps(config))
    cfg = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    torch.manual_seed(0)
    auto = AutoModelForMaskedLM if auto_key == "AutoModelForMaskedLM" else AutoModel
    model = auto.from_config(cfg, trust_remote_code=True)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        for i, b in bias.items():
            head.bias[i] = b
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


LLADA_SPECIALS = ["<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>"]
DREAM_SPECIALS = ["<|endoftext|>", "<|im_end|>", "<|mask|>"]


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
    return out


def bert_checkpoint(folder: Path, with_mask: bool) -> Path:
    from transformers import BertConfig, BertForMaskedLM

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (["[MASK]"] if with_mask else [])
    roles = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")
    if with_mask:
        roles["mask_token"] = "[MASK]"
    tok = char_tokenizer(specials, **roles)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=64, max_position_embeddings=128, pad_token_id=0))
    if with_mask:
        with torch.no_grad():
            model.cls.predictions.bias[4] = 1e4
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


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
    assert torch.equal(logits[..., :50257], raw[..., :50257])
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
    from mdlm_probe.adapters import remote  # noqa: F401 (registers the adapters)

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
    ("dream", ["--cache", "prefix"], "KV cache"),  # remote families have no block caches
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
