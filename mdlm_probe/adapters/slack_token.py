"""`<slack>` in a real tokenizer: add the token, give the model a row for it, return its id.

CTC+CE needs a blank token the collapse deletes. Real checkpoints (LLaDA, Dream) have no such token, so
training adds one before the first step and the loader of a LoRA folder adds it again, the same way, before
the adapter goes on (adapters/peft_folder.py): the rule below is deterministic for that reason.
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken

from mdlm_probe.core.exceptions import BadInput
from .tokenizer import SLACK

SLACK_TOKEN = SLACK  # "<slack>", the same string as the character tokenizer's


def add_slack_token(module: torch.nn.Module, tokenizer, token: str = SLACK_TOKEN) -> int:
    """Add `token` to `tokenizer` as a special token and give `module` input and output rows for it.

    Returns the token's id. A tokenizer that already has the token is left alone (the id is returned, and
    rows are added only if the module lacks them), so calling this twice changes nothing.

    Rows: when the id falls past the input embedding, the input embedding and the output head grow to
    id + 1 rows (in place: the same modules get larger weights, so names, tying and peft targets are kept)
    and `config.vocab_size` (and LLaDA's `config.embedding_size`) follow. When it falls inside an embedding
    padded past the tokenizer (Dream-7B: 152,064 rows for about 151,670 tokens), that spare row is used.

    Initialisation: the new row of each matrix (input and output, and an output bias) is the mean of the
    rows of the ids below it, i.e. of the tokenizer's own tokens (spare padding rows never saw an input).
    Why the mean: its logit under any hidden state is the average of the vocabulary's logits, so the new
    token starts with an ordinary, never a dominant, probability and every other distribution barely moves
    (Hewitt, "Initializing new word embeddings for pretrained language models", 2021); as an input it
    reads as an average token. And it is deterministic, unlike transformers' resize (a sample around the
    mean), so base + this function gives the same weights at training and at adapter load.
    """
    vocab = tokenizer.get_vocab()
    added = token not in vocab
    if added:
        tokenizer.add_tokens([AddedToken(token, special=True, normalized=False)], special_tokens=True)
    new_id = int(tokenizer.convert_tokens_to_ids(token))
    emb, head = _embedding_modules(module)
    rows = emb.weight.shape[0]
    if new_id >= rows:
        _grow(module, emb, head, new_id + 1)
    elif not added:
        return new_id  # already there, with its row: nothing to do
    with torch.no_grad():
        for w in {id(m.weight): m.weight for m in (emb, head)}.values():  # a tied matrix once
            w[new_id] = w[:new_id].float().mean(0).to(w.dtype)
        bias = getattr(head, "bias", None)
        if bias is not None:
            bias[new_id] = bias[:new_id].float().mean().to(bias.dtype)
    return new_id


def _embedding_modules(module: torch.nn.Module) -> tuple[torch.nn.Embedding, torch.nn.Linear]:
    """(input embedding, output head): the model's own accessors when it implements them, else the only
    nn.Embedding and the last nn.Linear with as many rows (remote code that names neither)."""
    emb = head = None
    try:
        emb = module.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        pass
    try:
        head = module.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        pass
    if emb is None:
        found = [m for m in module.modules() if isinstance(m, torch.nn.Embedding)]
        rows = head.weight.shape[0] if head is not None else None
        found = [m for m in found if rows is None or m.weight.shape[0] == rows]
        if len(found) != 1:
            raise BadInput(f"cannot add {SLACK_TOKEN}: {type(module).__name__} has no get_input_embeddings() "
                           f"and {len(found)} candidate embeddings")
        emb = found[0]
    if head is None:
        found = [m for m in module.modules() if isinstance(m, torch.nn.Linear)
                 and m.weight.shape[0] == emb.weight.shape[0]]
        if not found:
            raise BadInput(f"cannot add {SLACK_TOKEN}: {type(module).__name__} has no output head with "
                           f"{emb.weight.shape[0]} rows")
        head = found[-1]
    if emb.weight.shape[0] != head.weight.shape[0]:
        raise BadInput(f"cannot add {SLACK_TOKEN}: input embedding has {emb.weight.shape[0]} rows, "
                       f"output head {head.weight.shape[0]}")
    return emb, head


def _grow(module: torch.nn.Module, emb: torch.nn.Embedding, head: torch.nn.Module, rows: int) -> None:
    """Give `emb` and `head` `rows` rows in place (new rows zero until initialised); update the config.

    Every module attribute holding one of the old parameters gets the new one, so ties survive (BERT's head
    shares the input matrix, and its `predictions.bias` is the decoder's bias)."""
    grown: dict[int, torch.nn.Parameter] = {}
    for p in (emb.weight, head.weight, getattr(head, "bias", None)):
        if p is not None and id(p) not in grown:
            out = p.new_zeros((rows,) + tuple(p.shape[1:]))
            out[: p.shape[0]] = p.detach()
            grown[id(p)] = torch.nn.Parameter(out, requires_grad=p.requires_grad)
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None and id(p) in grown:
                sub._parameters[name] = grown[id(p)]
    emb.num_embeddings = rows
    if hasattr(head, "out_features"):
        head.out_features = rows
    config = getattr(module, "config", None)
    if config is not None:
        config.vocab_size = rows
        if getattr(config, "embedding_size", None):  # LLaDA sizes its matrices by embedding_size
            config.embedding_size = rows
