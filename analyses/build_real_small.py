"""A small LLaDA-architecture checkpoint with a real subword tokenizer, for the end-to-end training run.

    python analyses/build_real_small.py OUT [--d-model 128] [--n-layers 4] [--n-heads 4] [--mlp 384]
                                            [--vocab 320] [--seed 0]

The tokenizer is a byte-pair encoding trained here with `tokenizers` on synthetic problems and solutions
(mdlm_probe/tasks/synthetic.py): words become subword tokens, every digit is its own token (as in Qwen2's,
hence Dream's, pre-tokenizer), whitespace runs are tokens, so decoding is exact. Special tokens as LLaDA
names them: <|endoftext|> (EOS, id 0), <|eot_id|> (1), <|mdm_mask|> (2), <|start_header_id|>,
<|end_header_id|>, and a LLaDA-style chat template. The embedding is padded to `--vocab` rows past the
tokenizer (LLaDA-8B pads 126,464), so `<slack>` later takes a spare row. The weights are random
(tests/helpers/arch_checkpoints.py: LLaDA's published config fields and state-dict names, the modeling file the
project tests with); `mdlm-probe train --init OUT` pretrains them (analyses/train_real_small.sh).
"""

import argparse
import random
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

from arch_checkpoints import llada_arch_checkpoint  # noqa: E402 - tests/ is not a package
from safetensors.torch import load_file  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from mdlm_probe.tasks import synthetic  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>", "<|start_header_id|>", "<|end_header_id|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                 "{{ m['content'] }}<|eot_id|>{% endfor %}"
                 "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def train_tokenizer(n_texts: int = 20000, vocab: int = 300, seed: int = 0) -> PreTrainedTokenizerFast:
    rng = random.Random(seed)
    texts = []
    for _ in range(n_texts):
        p = synthetic.sample_train(rng)
        texts += [synthetic.format_prompt(p.question), p.solution]
    tok = Tokenizer(models.BPE())
    # Letters group into words, each digit stands alone, whitespace runs and punctuation runs are tokens.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[A-Za-z]+|\d|\s+|[^A-Za-z\d\s]+"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    alphabet = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS,
                                                       initial_alphabet=alphabet, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIALS[1:], clean_up_tokenization_spaces=False,
                                   padding_side="left", chat_template=CHAT_TEMPLATE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=384)
    ap.add_argument("--vocab", type=int, default=320, help="embedding rows (>= the tokenizer's size)")
    ap.add_argument("--tokenizer-vocab", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    tok = train_tokenizer(vocab=a.tokenizer_vocab, seed=a.seed)
    assert [tok.convert_tokens_to_ids(s) for s in SPECIALS[:3]] == [0, 1, 2]
    if len(tok) > a.vocab:
        sys.exit(f"--vocab {a.vocab} is smaller than the tokenizer ({len(tok)} tokens)")
    llada_arch_checkpoint(a.out, seed=a.seed, d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads,
                          n_kv_heads=a.n_heads, mlp_hidden_size=a.mlp, vocab_size=a.vocab,
                          max_sequence_length=256, head_scale=1.0)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (a.out / f).unlink(missing_ok=True)  # the builder's character tokenizer
    tok.save_pretrained(a.out)
    n = sum(v.numel() for v in load_file(a.out / "model.safetensors").values())
    example = synthetic.sample_train(random.Random(1)).solution
    print(f"{a.out}: {n / 1e6:.2f}M parameters, tokenizer {len(tok)} tokens, embedding {a.vocab} rows; "
          f"{example!r} -> {tok.tokenize(example)}")


if __name__ == "__main__":
    main()
