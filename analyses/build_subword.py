"""A LLaDA-architecture checkpoint with a byte-pair tokenizer whose digits are split one per token or grouped in
threes (LLaMA-3 style), for issue 37's subword models.

    python analyses/build_subword.py OUT --digits split|group3 [--d-model 128] [--n-layers 4] [--n-heads 4]
                                         [--mlp 384] [--vocab N] [--tokenizer-vocab N] [--seed 0]

The same recipe as analyses/build_real_small.py (LLaDA's published layout through tests/arch_checkpoints.py,
random weights; a byte-pair tokenizer trained with `tokenizers` on synthetic problems and solutions; LLaDA's
special tokens and a LLaDA-style chat template; the embedding padded past the tokenizer so `<slack>` later takes
a spare row), with the digit rule as an option:

- `--digits split`: every digit is its own pre-token (Qwen2's, hence Dream's, `\\p{N}`); with the default
  sizes the tokenizer is build_real_small.py's, token for token (217 tokens).
- `--digits group3`: a digit run splits from the left into groups of one to three digits, as LLaMA-3's
  pre-tokenizer regex `\\p{N}{1,3}` does ("1000000" -> "100" "000" "0"; "1,000,000" -> "1" "," "000" ","
  "000"), and every group is one token: the BPE trainer also sees each of the 1110 strings of one to three
  digits once ("0".."9", "00".."99", "000".."999"), so all of them become tokens, as all of 0-999 are in
  LLaMA-3's vocabulary. Checked after training: each of those strings encodes to exactly one token.

`--vocab` (embedding rows) defaults to the tokenizer's size + 1 rounded up to a multiple of 64.
"""

import argparse
import itertools
import random
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's mdlm_probe
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "analyses"))

from arch_checkpoints import llada_arch_checkpoint  # noqa: E402 - tests/ is not a package
from build_real_small import CHAT_TEMPLATE, SPECIALS  # noqa: E402 - the same specials and template
from safetensors.torch import load_file  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from mdlm_probe import synthetic  # noqa: E402

# Letters group into words, whitespace runs and punctuation runs are tokens; digits per --digits.
DIGIT_RULES = {"split": r"\d", "group3": r"\d{1,3}"}
DIGIT_GROUPS = ["".join(t) for n in (1, 2, 3) for t in itertools.product(string.digits, repeat=n)]


def train_tokenizer(digits: str = "split", n_texts: int = 20000, vocab: int = 300,
                    seed: int = 0) -> PreTrainedTokenizerFast:
    rng = random.Random(seed)
    texts = []
    for _ in range(n_texts):
        p = synthetic.sample_train(rng)
        texts += [synthetic.format_prompt(p.question), p.solution]
    if digits == "group3":
        texts += DIGIT_GROUPS  # every group of 1-3 digits becomes a token (see the module docstring)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(rf"[A-Za-z]+|{DIGIT_RULES[digits]}|\s+|[^A-Za-z\d\s]+"),
                                             behavior="isolated")
    tok.decoder = decoders.Fuse()
    alphabet = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS,
                                                       initial_alphabet=alphabet, show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIALS[1:], clean_up_tokenization_spaces=False,
                                   padding_side="left", chat_template=CHAT_TEMPLATE)
    if digits == "group3":
        bad = [g for g in DIGIT_GROUPS if len(fast.tokenize(g)) != 1]
        if bad:
            sys.exit(f"--tokenizer-vocab {vocab} too small: {len(bad)} digit groups are not single tokens "
                     f"(e.g. {bad[:5]})")
    return fast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--digits", choices=sorted(DIGIT_RULES), default="split")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=384)
    ap.add_argument("--vocab", type=int, default=None,
                    help="embedding rows (> the tokenizer's size; default: its size + 1 rounded up to 64)")
    ap.add_argument("--tokenizer-vocab", type=int, default=None,
                    help="BPE vocabulary cap (default 300 for split, 2000 for group3: the trainer stops earlier "
                         "once every pre-token is one token)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cap = a.tokenizer_vocab or (300 if a.digits == "split" else 2000)
    tok = train_tokenizer(a.digits, vocab=cap, seed=a.seed)
    assert [tok.convert_tokens_to_ids(s) for s in SPECIALS[:3]] == [0, 1, 2]
    rows = a.vocab or -(-(len(tok) + 1) // 64) * 64
    if len(tok) >= rows:
        sys.exit(f"--vocab {rows} leaves no spare row past the tokenizer ({len(tok)} tokens) for <slack>")
    llada_arch_checkpoint(a.out, seed=a.seed, d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads,
                          n_kv_heads=a.n_heads, mlp_hidden_size=a.mlp, vocab_size=rows,
                          max_sequence_length=256, head_scale=1.0)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (a.out / f).unlink(missing_ok=True)  # the builder's character tokenizer
    tok.save_pretrained(a.out)
    n = sum(v.numel() for v in load_file(a.out / "model.safetensors").values())
    print(f"{a.out}: {n / 1e6:.2f}M parameters (d_model {a.d_model}, {a.n_layers} blocks, {a.n_heads} heads, "
          f"MLP {a.mlp}), tokenizer {len(tok)} tokens (digits {a.digits}), embedding {rows} rows")
    for s in ("1000000", "1,000,000", "120+80=200", synthetic.sample_train(random.Random(1)).solution):
        print(f"  {s!r} -> {tok.tokenize(s)}")


if __name__ == "__main__":
    main()
