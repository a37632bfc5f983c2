"""`mdlm-probe tokens`: adjacent identical tokens that the standard CTC collapse would merge, on hand-built tokenizers."""

from __future__ import annotations

import json

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mdlm_probe.adapters.tokenizer import build_char_tokenizer
from mdlm_probe.runs.tokens import mergeable_pairs, offsets, token_risk, trailing_zero_spans

TEXTS = ["100+900=1000 #### 1000", "7+8=15 #### 15", "1000000000 and 1,000,000", "112+3=115 #### 115"]


def grouped(tmp_path=None) -> PreTrainedTokenizerFast:
    """Digits in groups of up to three from the left (LLaMA-3's \\p{N}{1,3}), everything else one char a token."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d{1,3}|[^\d]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    groups = [str(i).zfill(w) for w in (1, 2, 3) for i in range(10 ** w)]
    tok.train_from_iterator(groups + list("+=# ,and"), trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"],
                                                                           show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def kinds(tok, text):
    ids, spans = offsets(tok, text)
    return [(p.token, p.kind) for p in mergeable_pairs(ids, spans, text)]


def test_trailing_zeros_of_each_number_with_group_commas():
    text = "80,000 and 1200 and 000 and 7 and 1,005"
    assert [text[a:b] for a, b in trailing_zero_spans(text)] == ["0,000", "00"]


def test_one_digit_per_token_makes_every_repeat_a_pair():
    char = build_char_tokenizer()
    assert kinds(char, "100+900=1000") == [("0", "trailing-zeros"), ("0", "trailing-zeros"),
                                           ("0", "trailing-zeros"), ("0", "trailing-zeros")]
    assert kinds(char, "112 #") == [("1", "other-digits")]
    assert kinds(char, "1005 ##") == [("0", "other-digits"), ("#", "other")]  # zeros inside, not trailing


def test_grouped_digits_merge_only_equal_groups():
    tok = grouped()
    assert tok.tokenize("1000000000") == ["100", "000", "000", "0"]
    assert kinds(tok, "1000000000") == [("000", "trailing-zeros")]  # "000" "000": three zeros lost at once
    assert kinds(tok, "1,000,000") == []  # a comma stands between the groups
    assert kinds(tok, "100100") == [("100", "other-digits")]
    assert kinds(tok, "1000") == []  # "100" "0"


def test_risk_counts_texts_by_kind_with_examples():
    risk = token_risk(build_char_tokenizer(), TEXTS, name="char", source="test")
    assert (risk.n, risk.at_risk, risk.numbers_at_risk) == (4, 4, 3)
    assert risk.by_kind == {"trailing-zeros": 2, "other-digits": 1, "other": 3}  # "and" and "," repeat nothing
    assert risk.pairs == {"trailing-zeros": 1 + 1 + 2 + 2 + 8 + 2 + 2,  # 100, 900, 1000 x2; 1000000000; 1,000,000
                          "other-digits": 3, "other": 9}  # 112, 115 x2; "####" x3
    assert risk.examples["other-digits"] == ["[11]2+3=115 #### 115"]
    row = risk.row()
    assert row["numbers_at_risk"] == 0.75 and 0 < row["numbers_ci_low"] < 0.75 < row["numbers_ci_high"] <= 1
    g = token_risk(grouped(), TEXTS, name="g3", source="test")
    assert (g.numbers_at_risk, g.by_kind["trailing-zeros"]) == (1, 1)  # only 1000000000 keeps a pair


def test_cli_reads_a_jsonl_file_and_prints_json(cli, capsys, tmp_path):
    f = tmp_path / "texts.jsonl"
    f.write_text("".join(json.dumps({"answer": t}) + "\n" for t in TEXTS))
    assert cli("tokens", "tiny-ce", "--benchmark", "none", "--data-file", str(f), "--field", "answer",
               "--format", "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["tokenizer"] == "tiny-ce" and out[0]["n"] == 4 and out[0]["numbers_at_risk"] == 0.75


@pytest.mark.parametrize("args, msg", [
    (["no-such-tokenizer"], "no tokenizer in 'no-such-tokenizer'"),
    (["tiny-ce", "--benchmark", "none"], "--data-file"),
    (["tiny-ce", "--format", "xml"], "--format"),
])
def test_bad_input_is_one_line(cli, capsys, args, msg):
    assert cli("tokens", *args) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.strip().count("\n") == 0


def test_a_jsonl_line_without_the_field_is_one_line(cli, capsys, tmp_path):
    f = tmp_path / "texts.jsonl"
    f.write_text('{"text": "1"}\n')
    assert cli("tokens", "tiny-ce", "--benchmark", "none", "--data-file", str(f)) == 2
    assert "no text field 'reference'" in capsys.readouterr().err
