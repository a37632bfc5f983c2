"""Small local stand-ins for real checkpoint families, shared by the tests (test_adapters, test_doc_commands).

Each checkpoint is written to a folder with random weights and a character-level tokenizer. The
remote-code families (LLaDA, Dream, MDLM) get a small modeling file from tests/fixtures/remote_models/ and
an `auto_map` in config.json, so loading goes through the real `trust_remote_code=True` path; the masked
LM is a plain transformers BERT (or RoBERTa / ModernBERT). test_adapters.py and test_doc_commands.py build
their checkpoints with these.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import torch

from mdlm_probe.adapters.compat import legacy_rope

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "remote_models"
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]


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


def remote_checkpoint(folder: Path, family: str, config: dict, tok, bias: dict[int, float], auto_key="AutoModel",
                      drop: tuple[str, ...] = ()):
    """A random-weight checkpoint whose modeling code is loaded with trust_remote_code (`drop`: weights left out)."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    folder.mkdir(parents=True)
    for f in ("tiny_encoder.py", f"modeling_tiny_{family}.py"):
        shutil.copy(FIXTURES / f, folder / f)
    cls, cfg_cls = {"llada": ("TinyLLaDAModelLM", "TinyLLaDAConfig"), "dream": ("TinyDreamModel", "TinyDreamConfig"),
                    "dream_v4": ("TinyDreamV4Model", "TinyDreamV4Config"), "mdlm": ("TinyMDLM", "TinyMDLMConfig")}[family]
    mod = f"modeling_tiny_{family}"
    config = {**config, "architectures": [cls], "auto_map": {"AutoConfig": f"{mod}.{cfg_cls}", auto_key: f"{mod}.{cls}"}}
    (folder / "config.json").write_text(json.dumps(config))
    cfg = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    torch.manual_seed(0)
    auto = AutoModelForMaskedLM if auto_key == "AutoModelForMaskedLM" else AutoModel
    with legacy_rope():  # Dream's transformers 4 rotary needs it to be built at all under transformers 5
        model = auto.from_config(cfg, trust_remote_code=True)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        for i, b in bias.items():
            head.bias[i] = b
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    if drop:
        from safetensors.torch import load_file, save_file

        weights = load_file(folder / "model.safetensors")
        save_file({k: v for k, v in weights.items() if k not in drop}, folder / "model.safetensors",
                  metadata={"format": "pt"})
    return folder


LLADA_SPECIALS = ["<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>"]
# LLaDA-8B-Instruct's chat template (what gsm8k.render_llada_chat writes out by hand), with an
# add_generation_prompt test so the flags reach it
LLADA_CHAT_TEMPLATE = ("<|startoftext|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                       "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
                       "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
DREAM_SPECIALS = ["<|endoftext|>", "<|im_end|>", "<|mask|>"]


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_ROLES = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=128, pad_token_id=0)


def bert_checkpoint(folder: Path, with_mask: bool, head: bool = True) -> Path:
    from transformers import BertConfig, BertForMaskedLM, BertModel

    specials = BERT_SPECIALS if with_mask else BERT_SPECIALS[:4]
    roles = BERT_ROLES if with_mask else {k: v for k, v in BERT_ROLES.items() if k != "mask_token"}
    tok = char_tokenizer(specials, **roles)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), **SMALL)
    model = BertForMaskedLM(config) if head else BertModel(config)
    if with_mask and head:
        with torch.no_grad():
            model.cls.predictions.bias[4] = 1e4
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def masked_lm_checkpoint(folder: Path, kind: str) -> Path:
    from transformers import ModernBertConfig, ModernBertForMaskedLM, RobertaConfig, RobertaForMaskedLM

    tok = char_tokenizer(BERT_SPECIALS, **BERT_ROLES)
    torch.manual_seed(0)
    if kind == "roberta":  # position ids reserve 0..padding_idx, as in RoBERTa
        model = RobertaForMaskedLM(RobertaConfig(vocab_size=len(tok), type_vocab_size=1,
                                                 **{**SMALL, "max_position_embeddings": 130}))
    else:
        model = ModernBertForMaskedLM(ModernBertConfig(vocab_size=len(tok), cls_token_id=2, sep_token_id=3,
                                                       bos_token_id=2, eos_token_id=3, global_attn_every_n_layers=1,
                                                       **SMALL))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def llada_checkpoint(folder: Path, tok=None, chat: bool = False, max_length: int | None = None) -> Path:
    """A tiny LLaDA stand-in; `tok` (default: a character tokenizer with LLaDA's specials), with LLaDA's chat
    template when `chat`, and `max_sequence_length` in its config when `max_length` is given."""
    # The tokenizer names no mask role; the adapter finds <|mdm_mask|> (id 2) in its vocabulary.
    # A trained model never proposes the mask; the bias stands in for that.
    tok = tok if tok is not None else char_tokenizer(LLADA_SPECIALS, eos_token="<|endoftext|>")
    if chat:
        tok.chat_template = LLADA_CHAT_TEMPLATE
    config = {"model_type": "llada", "vocab_size": 128}
    if max_length is not None:
        config["max_sequence_length"] = max_length
    return remote_checkpoint(folder, "llada", config, tok, {2: -1e4})


def dream_checkpoint(folder: Path) -> Path:
    # Mask and pad ids in config.json, as Dream's config has them.
    tok = char_tokenizer(DREAM_SPECIALS, eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mask|>")
    return remote_checkpoint(folder, "dream", {"model_type": "Dream", "vocab_size": 112, "mask_token_id": 2,
                                               "pad_token_id": 0, "eos_token_id": 0}, tok, {2: -1e4})


def mdlm_checkpoint(folder: Path) -> Path:
    # A GPT-2-sized vocabulary (50257 tokens, EOS last) and one extra model id, 50257, for the mask.
    # The raw model prefers the mask everywhere; the adapter must never let it be proposed.
    tok = char_tokenizer([], fill_to=50257, eos_token="<|endoftext|>")
    return remote_checkpoint(folder, "mdlm", {"model_type": "mdlm", "vocab_size": 50258}, tok, {50257: 1e4},
                             auto_key="AutoModelForMaskedLM")
