"""Character-level tokenizer for the built-in tiny models.

Every character is its own token (so every digit is one token and "100" is three), plus the special
tokens a masked diffusion LM needs. It is a plain `PreTrainedTokenizerFast`, saved as tokenizer.json,
so `AutoTokenizer.from_pretrained(folder)` loads it with no custom code.
"""

from __future__ import annotations

import string

PAD, MASK, SLACK, EOS, UNK = "[PAD]", "[MASK]", "<slack>", "<eos>", "[UNK]"
SPECIALS = [PAD, MASK, SLACK, EOS, UNK]
# Printable ASCII plus newline; anything else maps to [UNK].
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]


def build_char_tokenizer():
    """A fresh character-level tokenizer: ids 0-4 are [PAD] [MASK] <slack> <eos> [UNK], then characters."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Split into single characters, keeping each one (whitespace included) as a token.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # concatenate characters without spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        mask_token=MASK,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=[SLACK],
        clean_up_tokenization_spaces=False,
        padding_side="left",
        model_max_length=512,
    )
    return fast
