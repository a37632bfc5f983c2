"""`<slack>` in a real tokenizer (mdlm_probe.adapters.slack_token) and the collapse maps on real token ids."""

from __future__ import annotations

import pytest
import torch

from arch_checkpoints import dream_arch_checkpoint, llada_arch_checkpoint
from mdlm_probe import load_model
from mdlm_probe.core.collapse import collapse_all, collapse_ids
from mdlm_probe.adapters.slack_token import add_slack_token
from mdlm_probe.adapters.tokenizer import build_char_tokenizer
from standins import bert_checkpoint, llada_checkpoint

IDS = torch.tensor([[5, 17, 2, 2, 40]])


def rows(m):
    return m.module.get_input_embeddings().weight, m.module.get_output_embeddings().weight


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("slack")
    return {"spare": llada_arch_checkpoint(root / "spare"), "grow": llada_arch_checkpoint(root / "grow", vocab_size=99),
            "bert": bert_checkpoint(root / "bert", with_mask=True), "standin": llada_checkpoint(root / "standin"),
            "dream": dream_arch_checkpoint(root / "dream"),
            "tied": llada_arch_checkpoint(root / "tied", vocab_size=99, weight_tying=True)}


@pytest.mark.parametrize("name", ["spare", "dream"])
def test_spare_row_of_a_padded_embedding(ckpts, name):
    """An embedding padded past the tokenizer (Dream-7B's is): `<slack>` takes the next spare row, set to the mean."""
    m = load_model(ckpts[name], dtype="float64")
    n = len(m.tokenizer)
    with torch.no_grad():
        before = m(IDS)
    sid = add_slack_token(m.module, m.tokenizer)
    emb, head = rows(m)
    assert sid == n and emb.shape[0] == head.shape[0] == 128 and m.module.config.vocab_size == 128
    assert torch.allclose(emb[sid], emb[:sid].mean(0)) and torch.allclose(head[sid], head[:sid].mean(0))
    with torch.no_grad():
        after = m(IDS)
        ids = torch.tensor([[5, sid, 2]])
        h = m(ids)
    keep = torch.ones(128, dtype=torch.bool)
    keep[sid] = False
    # bit-equal: the head keeps its 128 rows, so the same matmul runs on the same shapes before and after
    assert torch.equal(before[..., keep], after[..., keep])  # no other token's logit moved
    # the mean row's logit is the mean of the real tokens' logits under any hidden state
    assert torch.allclose(h[..., sid], h[..., :sid].mean(-1))


def test_growing_the_embedding_and_head(ckpts):
    m = load_model(ckpts["grow"], dtype="float64")
    with torch.no_grad():
        before = m(IDS)
    old = [w.detach().clone() for w in rows(m)]
    sid = add_slack_token(m.module, m.tokenizer)
    emb, head = rows(m)
    cfg = m.module.config
    assert sid == 99 and emb.shape[0] == head.shape[0] == 100
    assert cfg.vocab_size == cfg.embedding_size == 100
    # the old rows are copied, so they are bit-equal ...
    assert torch.equal(emb[:99], old[0]) and torch.equal(head[:99], old[1])
    with torch.no_grad():
        after = m(IDS)
    # ... but a head of 100 rows is a different matmul than one of 99 (its blocking, so its rounding, may
    # differ by CPU): the other tokens' logits agree to float64 rounding, not bit for bit
    assert after.shape[-1] == 100
    torch.testing.assert_close(after[..., :99], before, rtol=0, atol=1e-12)
    assert torch.allclose(emb[sid], emb[:sid].mean(0)) and torch.allclose(head[sid], head[:sid].mean(0))


def test_llada_with_weight_tying(ckpts):
    """LLaDA's weight_tying: the output layer is the input embedding; it grows once and stays shared."""
    m = load_model(ckpts["tied"], dtype="float64")
    sid = add_slack_token(m.module, m.tokenizer)
    emb, head = rows(m)
    assert head is emb and emb.shape[0] == 100 == m.module.config.embedding_size
    assert torch.allclose(emb[sid], emb[:sid].mean(0))
    with torch.no_grad():
        assert m(IDS).shape[-1] == 100


def test_tied_embeddings_and_output_bias(ckpts):
    """BERT: the output matrix is the input embedding (tied) and the head has a bias."""
    m = load_model(ckpts["bert"], dtype="float64")
    sid = add_slack_token(m.module, m.tokenizer)
    emb, head = rows(m)
    bias = m.module.get_output_embeddings().bias
    assert head is emb and emb.shape[0] == sid + 1 == m.module.config.vocab_size
    assert torch.allclose(emb[sid], emb[:sid].mean(0)) and torch.allclose(bias[sid], bias[:sid].mean())
    with torch.no_grad():
        assert m(torch.tensor([[2, 7, sid, 3]])).shape[-1] == sid + 1


def test_remote_code_without_embedding_accessors(ckpts):
    """The LLaDA stand-in names no input embedding: the only nn.Embedding and the head are found by shape."""
    m = load_model(ckpts["standin"], dtype="float64")
    sid = add_slack_token(m.module, m.tokenizer)
    emb = m.module.model.tok.weight
    assert torch.allclose(emb[sid], emb[:sid].mean(0))


def test_idempotent_and_deterministic(ckpts):
    a, b = load_model(ckpts["grow"]), load_model(ckpts["grow"])
    sa, sb = add_slack_token(a.module, a.tokenizer), add_slack_token(b.module, b.tokenizer)
    state = {k: v.clone() for k, v in a.module.state_dict().items()}
    assert add_slack_token(a.module, a.tokenizer) == sa == sb  # a second call changes nothing
    assert all(torch.equal(state[k], v) for k, v in a.module.state_dict().items())
    assert all(torch.equal(v, b.module.state_dict()[k]) for k, v in state.items())  # same rule, same rows


def test_slack_survives_save_and_load(ckpts, tmp_path):
    from transformers import AutoTokenizer

    m = load_model(ckpts["bert"])
    sid = add_slack_token(m.module, m.tokenizer)
    m.module.save_pretrained(tmp_path / "b")
    m.tokenizer.save_pretrained(tmp_path / "b")
    tok = AutoTokenizer.from_pretrained(tmp_path / "b")
    assert tok.convert_tokens_to_ids("<slack>") == sid
    assert tok("7<slack>0", add_special_tokens=False)["input_ids"][1] == sid  # one token, never split
    again = load_model(tmp_path / "b")
    assert again.vocab_size == sid + 1


# ----------------------------------------------------------------------------------------- digits and collapse
def digit_tokenizer(split_digits: bool):
    """A BPE tokenizer trained here on arithmetic text; `split_digits` isolates every digit before BPE
    (as Qwen2's pre-tokenizer regex, hence Dream's, does with \\p{N}), else digits merge like letters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    pres = [pre_tokenizers.Whitespace()] + ([pre_tokenizers.Digits(individual_digits=True)] if split_digits else [])
    tok.pre_tokenizer = pre_tokenizers.Sequence(pres)
    tok.decoder = decoders.BPEDecoder()
    text = [f"{a}00+{b}000={a * 100 + b * 1000} total" for a in range(1, 10) for b in range(1, 10)] * 3
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]", "<|endoftext|>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


class TwoMatrices(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.emb, self.head = torch.nn.Embedding(n, 4), torch.nn.Linear(4, n)


def test_digit_split_tokenizer_collapses_like_the_character_models():
    """With every digit its own token, the standard CTC collapse merges "0 0" at token level exactly as in the
    character models: "1000" -> "10" under ctc, kept under surface, and a `<slack>` between equal digits saves
    them. Without the digit split, "000" is one token and nothing merges."""
    tok = digit_tokenizer(split_digits=True)
    sid = add_slack_token(TwoMatrices(len(tok)), tok)
    eos = tok.eos_token_id
    assert tok.convert_ids_to_tokens(tok("1000", add_special_tokens=False)["input_ids"]) == ["1", "0", "0", "0"]
    char = build_char_tokenizer()
    char_slack = char.convert_tokens_to_ids("<slack>")
    for text in ["1000", "1<slack>0<slack>0<slack>0", "10<slack>00", "1<slack><slack>000<slack>"]:
        ids = tok(text, add_special_tokens=False)["input_ids"] + [eos, 7]
        got = collapse_all(ids, tok, sid, [eos])
        want = collapse_all(char(text, add_special_tokens=False)["input_ids"], char, char_slack, [])
        assert {k: v.replace(" ", "") for k, v in got.items()} == want, text
    ids = tok("1000", add_special_tokens=False)["input_ids"]
    assert tok.decode(collapse_ids(ids, "ctc", sid)) .replace(" ", "") == "10"
    assert tok.decode(collapse_ids(ids, "surface", sid)).replace(" ", "") == "1000"

    merged = digit_tokenizer(split_digits=False)
    msid = add_slack_token(TwoMatrices(len(merged)), merged)
    ids = merged("1000", add_special_tokens=False)["input_ids"]
    assert len(ids) < 4  # digits merged into multi-digit tokens
    assert merged.decode(collapse_ids(ids, "ctc", msid)).replace(" ", "") == "1000"
