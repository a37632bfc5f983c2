"""A preset's bos rule, left truncation and OpenCompass's GPQA prompt, as eval and shift apply them
(runs/protocol.encode_protocol, tasks/benchmarks/gpqa.py): token ids start as the reference rule says on
test-built tokenizers that do and do not add a BOS; "left:N" keeps the last N prompt tokens and the record,
summary and card say so; the GPQA 5-shot text is read with `ast` from the user's own config and checked by
sha256 (here a synthetic config: no GPQA text is ever in this repository), its options in OpenCompass's order."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import standins as st
from tokenizers import processors

from mdlm_probe.adapters import load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.runs.protocol import Protocol, encode_protocol, protocol_of, score_text
from mdlm_probe.runs.shift import ShiftGrid, run_shift
from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.tasks.benchmarks import gpqa
from mdlm_probe.tasks.benchmarks.gsm8k import render_llada_chat
from mdlm_probe.tasks.presets import protocol_gap, get_preset

FIX = st.FIXTURES.parent / "protocols"
SMALL = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 2}
BOS = "<|startoftext|>"
# a stand-in for OpenCompass's gpqa_fewshot_gen.py: the same layout, made-up examples (no GPQA text); executing
# it would fail (the import does not exist), so reading it must not execute it
FAKE_CONFIG = ('import not_a_module_anyone_has\n\nfive_shot_prompt = """\nHere are made-up examples.\nQuestion: '
               'What is 1 + 1?\nChoices:\n(A) 1\n(B) 2\n(C) 3\n(D) 4\nThe correct answer is (B)\n"""\n\n'
               'gpqa_infer_cfg = dict(x=f"{five_shot_prompt}\\nQuestion:")\n')


def bos_tokenizer(adds: bool):
    """A character tokenizer with bos_token <|startoftext|> that adds it when encoding (`adds`) or not."""
    tok = st.char_tokenizer(st.LLADA_SPECIALS + [BOS], eos_token="<|endoftext|>", bos_token=BOS)
    if adds:  # what encoding with the default special tokens does: a BOS first
        tok._tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A",
                                                                      special_tokens=[(BOS, tok.bos_token_id)])
    return tok


def proto(**kw) -> Protocol:
    base = dict(preset="p", prompt_format="lm-eval:gsm8k", fewshot_rule=None, stop_rule="none", stop_strings=(),
                extraction="lm-eval:gsm8k", truncation="none", chat=False, bos="template")
    return Protocol(**{**base, **kw})


def llada(folder, tok, chat: bool = False):
    return st.llada_checkpoint(folder, tok, chat=chat, max_length=4096)


def write_gsm8k(path, questions):
    rows = [{"question": q, "answer": f"{i}+2={i + 2}\n#### {i + 2}"} for i, q in enumerate(questions)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def records(run) -> list[dict]:
    return [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------------------- bos
@pytest.mark.parametrize("adds", [True, False])
def test_each_bos_rule_starts_the_ids_as_the_reference_does(adds):
    tok, text = bos_tokenizer(adds), "Question: 2+2?\nAnswer:"
    plain = tok(text, add_special_tokens=False)["input_ids"]
    bos = tok.bos_token_id
    for rule in ("template", "none"):  # nothing added at encoding (a chat template writes its own)
        assert encode_protocol(tok, [text], proto(bos=rule), 8, 4096) == [(text, plain, 0)]
    # LLaDA-Base through lm-eval: tokenizer(question), default special tokens -> a BOS only if the tokenizer adds one
    (got,) = encode_protocol(tok, [text], proto(bos="tokenizer"), 8, 4096)
    assert got == (text, [bos] + plain if adds else plain, 0)
    # Dream-Base: bos_token text + prompt, then encoded the same way (so a BOS-adding tokenizer gives two)
    (got,) = encode_protocol(tok, [text], proto(bos="prepend"), 8, 4096)
    assert got == (BOS + text, [bos] * (2 if adds else 1) + plain, 0)


def test_prepend_needs_a_bos_token(tmp_path):
    tok = st.char_tokenizer(st.LLADA_SPECIALS, eos_token="<|endoftext|>")
    with pytest.raises(BadInput, match="^--preset p sets bos='prepend' .*has no bos_token$"):
        encode_protocol(tok, ["x"], proto(bos="prepend"), 8, 4096)
    data = write_gsm8k(tmp_path / "test.jsonl", ["How many?"])
    ckpt = llada(tmp_path / "nobos", tok)  # refused from its tokenizer_config.json, before anything is written
    with pytest.raises(BadInput, match="^--preset dream-v0-base-7b-gsm8k sets bos='prepend'"):
        run_eval(ckpt, "gsm8k", tmp_path / "run", sampler_overrides=SMALL, preset="dream-v0-base-7b-gsm8k",
                 data_file=data, dtype="float32")
    assert not (tmp_path / "run").exists()


def test_eval_and_shift_encode_llada_base_with_the_tokenizers_bos(tmp_path):
    assert protocol_gap(get_preset("llada-8b-base-gsm8k"), "eval") is None
    data = write_gsm8k(tmp_path / "test.jsonl", ["Ann has 3 pens. How many?", "Bo has 4 cups. How many?"])
    write_gsm8k(tmp_path / "train.jsonl", [f"Cy has {i} hats. How many?" for i in range(6)])  # the 5 shots
    ckpt = llada(tmp_path / "ck", bos_tokenizer(adds=True))
    run_eval(ckpt, "gsm8k", tmp_path / "run", sampler_overrides=SMALL, preset="llada-8b-base-gsm8k", data_file=data,
             dtype="float32")
    tok, bench = load_model(ckpt).tokenizer, get_benchmark("gsm8k", data_file=data)
    for r, s in zip(records(tmp_path / "run"), bench.load()):
        want = bench.protocol_prompt(s, "lm-eval:gsm8k", 5)
        assert r["prompt"] == want and r["prompt_ids"] == tok(want)["input_ids"]
        assert r["prompt_ids"][0] == tok.bos_token_id and r["prompt_ids"][1] != tok.bos_token_id
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["card"]["protocol"]["applied"]["bos"] == "tokenizer" and cfg["protocol"]["bos"] == "tokenizer"
    run = run_shift([str(ckpt)], tmp_path / "shift", ShiftGrid(modes=["delete"], fractions=[0.25]), sampler=SMALL,
                    limit=1, benchmark="gsm8k", data_file=data, preset="llada-8b-base-gsm8k", dtype="float32")
    first = records(tmp_path / "run")[0]
    assert {tuple(r["prompt_ids"]) for r in run.records} == {tuple(first["prompt_ids"])}


# ----------------------------------------------------------------------------------------- truncation
def test_left_truncation_keeps_the_last_n_tokens():
    tok, text = bos_tokenizer(False), "abcdefghij"
    (got,) = encode_protocol(tok, [text], proto(truncation="left:4"), 8, 4096)
    assert got == ("ghij", tok("ghij", add_special_tokens=False)["input_ids"], 6)
    assert encode_protocol(tok, ["abc"], proto(truncation="left:4"), 8, 4096)[0][2] == 0  # short: kept whole
    with pytest.raises(BadInput, match="sets truncation='left:4', but a prompt \\(4 tokens after its cut\\) \\+ "
                                       "gen-length 8 exceed the model's max length 10"):
        encode_protocol(tok, [text], proto(truncation="left:4"), 8, 10)  # never cut further than the protocol
    with pytest.raises(BadInput, match="sets truncation='none', but a prompt \\(10 tokens\\)"):
        encode_protocol(tok, [text], proto(), 8, 10)


def test_dream_instruct_prompts_are_cut_to_1024_tokens_and_the_card_counts_them(tmp_path):
    assert protocol_gap(get_preset("dream-v0-instruct-7b-gsm8k"), "eval") is None  # fork prompt, left:1024
    long_q = "Count the pens. " * 80  # 1280 characters: one token each
    data = write_gsm8k(tmp_path / "test.jsonl", [long_q, "How many pens?"])
    ckpt = llada(tmp_path / "ck", bos_tokenizer(False), chat=True)
    summary = run_eval(ckpt, "gsm8k", tmp_path / "run", sampler_overrides=SMALL, preset="dream-v0-instruct-7b-gsm8k",
                       data_file=data, dtype="float32")
    tok, bench = load_model(ckpt).tokenizer, get_benchmark("gsm8k", data_file=data)
    cut, whole = records(tmp_path / "run")
    for r, s in zip((cut, whole), bench.load()):
        msgs = bench.protocol_prompt(s, "dream-fork:gsm8k_cot", 0)["messages"]
        full = tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"]
        assert r["prompt_ids"] == full[-1024:] and r["prompt_info"]["cut_tokens"] == max(0, len(full) - 1024)
    assert cut["prompt_info"]["cut_tokens"] > 0 and whole["prompt_info"]["cut_tokens"] == 0
    assert cut["prompt"] == tok.decode(cut["prompt_ids"]) and not cut["prompt"].startswith("<|start_header_id|>")
    assert summary["truncated_prompts"] == 1
    card = json.loads((tmp_path / "run" / "config.json").read_text())["card"]
    assert card["protocol"]["applied"]["truncation"] == "left:1024" and card["protocol"]["prompts_cut"] == 1


# ----------------------------------------------------------------------------------------- GPQA
def fake_checkout(root, text: str = FAKE_CONFIG):
    """A folder laid out like ML-GSAI/LLaDA with the stand-in config."""
    path = root / "opencompass" / "opencompass" / gpqa.OC_CONFIG
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def five_shot_of(text: str = FAKE_CONFIG) -> str:
    return text.split('"""')[1]


def test_the_five_shot_prompt_is_read_with_ast_and_checked_by_hash(tmp_path, monkeypatch):
    path = fake_checkout(tmp_path / "LLaDA")
    digest = hashlib.sha256(five_shot_of().encode()).hexdigest()
    with pytest.raises(BadInput, match=f"five_shot_prompt has sha256 {digest[:16]}\\.\\.\\., not the "
                                       f"{gpqa.OC_FIVE_SHOT_SHA256[:16]}"):
        gpqa.opencompass_five_shot(tmp_path / "LLaDA")  # a different text: not the published protocol
    monkeypatch.setattr(gpqa, "OC_FIVE_SHOT_SHA256", digest)
    for source in (tmp_path / "LLaDA", tmp_path / "LLaDA" / "opencompass", path):  # LLaDA, OpenCompass, the file
        assert gpqa.opencompass_five_shot(source) == (five_shot_of(), path.resolve(), digest)
    with pytest.raises(BadInput, match="no opencompass/configs/datasets/gpqa/gpqa_fewshot_gen.py there; pass "
                                       "--protocol-source PATH"):
        gpqa.opencompass_five_shot(tmp_path)
    (tmp_path / "other.py").write_text("prompt = 'x'\n")
    with pytest.raises(BadInput, match="expected one top-level string five_shot_prompt"):
        gpqa.opencompass_five_shot(tmp_path / "other.py")


def test_the_pinned_hash_is_the_fixtures():
    fx = json.loads((FIX / "opencompass-llada-instruct-gpqa.json").read_text(encoding="utf-8"))
    assert fx["five_shot_prompt_sha256"] == gpqa.OC_FIVE_SHOT_SHA256


def write_gpqa(path, n=6):
    head = "Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n"
    rows = "".join(f"rec{i},Which number is {i} plus one? ,{i + 1},{i + 2},{i + 3},{i + 4}\n" for i in range(n))
    path.write_text(head + rows)
    return path


def test_gpqa_without_a_source_is_refused_saying_what_to_pass(tmp_path, cli, capsys):
    ckpt = llada(tmp_path / "ck", bos_tokenizer(False), chat=True)
    data = write_gpqa(tmp_path / "g.csv")
    for name in ("llada-8b-instruct-gpqa", "llada-1.5-gpqa"):
        assert protocol_gap(get_preset(name), "eval") is None
        with pytest.raises(BadInput, match=f"^--preset {name} sets prompt_format='opencompass:gpqa_fewshot_gen', "
                                           ".*pass --protocol-source PATH: your checkout of ML-GSAI/LLaDA"):
            run_eval(ckpt, "gpqa", tmp_path / "run", sampler_overrides=SMALL, preset=name, data_file=data)
    assert not (tmp_path / "run").exists()
    with pytest.raises(BadInput, match="shift reads it from your copy; pass --protocol-source PATH"):
        run_shift([str(ckpt)], tmp_path / "s", ShiftGrid(modes=["delete"], fractions=[0.25]), sampler=SMALL,
                  limit=1, preset="llada-8b-instruct-gpqa", data_file=data)
    assert cli("eval", "gpqa", "--preset", "llada-8b-instruct-gpqa", "--ckpt", str(ckpt), "--data-file", str(data),
               "--out", str(tmp_path / "c"), "--no-progress") == 2
    err = capsys.readouterr().err
    assert "--protocol-source PATH" in err and "Traceback" not in err
    assert cli("eval", "gpqa", "--preset", "llada-8b-instruct-gpqa", "--ckpt", str(ckpt), "--data-file", str(data),
               "--protocol-source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c"), "--no-progress") == 2
    assert "no opencompass/configs/datasets/gpqa/gpqa_fewshot_gen.py there" in capsys.readouterr().err
    with pytest.raises(BadInput, match="^--protocol-source is read only with .* not --preset llada-8b-base-gsm8k$"):
        run_eval(ckpt, "gsm8k", tmp_path / "run", preset="llada-8b-base-gsm8k", protocol_source=tmp_path)


def test_gpqa_eval_builds_opencompass_prompt_in_its_option_order(tmp_path, monkeypatch):
    cfg_file = fake_checkout(tmp_path / "LLaDA")
    monkeypatch.setattr(gpqa, "OC_FIVE_SHOT_SHA256", hashlib.sha256(five_shot_of().encode()).hexdigest())
    ckpt = llada(tmp_path / "ck", bos_tokenizer(False), chat=True)
    data = write_gpqa(tmp_path / "g.csv")
    run_eval(ckpt, "gpqa", tmp_path / "run", sampler_overrides={**SMALL, "gen_length": 16, "block_length": 16},
             preset="llada-8b-instruct-gpqa", data_file=data, dtype="float32", protocol_source=tmp_path / "LLaDA",
             limit=4)
    rows = gpqa.read_file(data, "diamond")
    letters = gpqa.opencompass_letters(rows)  # one seed-0 stream over the whole file, in file order
    assert letters != "".join(s.reference_answer for s in get_benchmark("gpqa", data_file=data).load())
    for i, r in enumerate(records(tmp_path / "run")):
        opts = [rows[i]["Correct Answer"]] + [rows[i][f"Incorrect Answer {k}"] for k in (1, 2, 3)]
        shown = [ln[3:] for ln in r["prompt"].split("Choices:\n")[-1].split("\n")[:4]]  # the question's
        assert sorted(shown) == sorted(opts) and "ABCD"[shown.index(opts[0])] == letters[i] == r["reference_answer"]
        user = (f"{five_shot_of()}\nQuestion:\n{rows[i]['Question']}\nChoices:\n"  # the raw csv text, unstripped
                + "".join(f"{L}. {o}\n" for L, o in zip("ABCD", shown)) + gpqa.OC_SUFFIX)
        assert r["prompt"] == render_llada_chat({"messages": [{"role": "user", "content": user}]})
        assert r["protocol_output"]["extraction"] == gpqa_extract(r["protocol_output"]["text"])
    card = json.loads((tmp_path / "run" / "config.json").read_text())["card"]
    applied = card["protocol"]["applied"]
    assert applied["source"] == str(cfg_file.resolve()) and applied["source_sha256"] == gpqa.OC_FIVE_SHOT_SHA256
    assert applied["bos"] == "template" and "prompts_cut" not in card["protocol"]
    assert "opencompass:gpqa, answers compared as letters" in card["extraction"]


def gpqa_extract(text: str) -> str:
    from mdlm_probe.tasks.extraction import extract
    return extract("opencompass:gpqa", text)


def test_gpqa_answers_are_compared_as_opencompass_compares_them(tmp_path, monkeypatch):
    fake_checkout(tmp_path / "LLaDA")
    monkeypatch.setattr(gpqa, "OC_FIVE_SHOT_SHA256", hashlib.sha256(five_shot_of().encode()).hexdigest())
    p = protocol_of("llada-8b-instruct-gpqa", tmp_path / "LLaDA")
    sample = type("S", (), {"question": "q", "reference_answer": "B"})()
    got = {t: score_text(p, t, sample) for t in ("The correct answer is (B).<|eot_id|>", "the correct answer is (b)",
                                                 "The correct answer is B", "The correct answer is (B and C)")}
    assert [(g["extracted"], g["correct"], g["verdict"]) for g in got.values()] == [
        ("B", True, "correct"), ("b", False, "wrong"), (None, False, "no_answer"), ("B and C", False, "wrong")]


def test_opencompass_option_order_of_the_real_diamond_set(shared_data):
    """Eval's GPQA samples under the preset carry OpenCompass's correct letters: the fixture's 198 (no text)."""
    fx = json.loads((FIX / "opencompass-llada-instruct-gpqa.json").read_text(encoding="utf-8"))
    path = next((shared_data / "gpqa").glob("*.zip"), None)
    if path is None:
        pytest.skip("no GPQA zip under ../shared/data/gpqa")
    bench = get_benchmark("gpqa", data_file=path)
    samples = [bench.protocol_sample(s, gpqa.OC_FORMAT) for s in bench.load()]
    assert [s.native_id for s in samples[:3]] == fx["problem_ids"]
    assert "".join(s.reference_answer for s in samples) == fx["answer_letters_all"]


def test_gpqa_prompts_hash_to_the_reference_pipelines(shared_data):
    """With a real checkout of ML-GSAI/LLaDA (MDLM_PROBE_LLADA_SRC) and the GPQA zip: the prompts eval builds for
    the fixture's three problems have the sha256 of the ones OpenCompass built (the fixture keeps hashes only)."""
    src, path = os.environ.get("MDLM_PROBE_LLADA_SRC"), next((shared_data / "gpqa").glob("*.zip"), None)
    if not src or path is None:
        pytest.skip("needs MDLM_PROBE_LLADA_SRC (a checkout of ML-GSAI/LLaDA b7e6c35: the GPQA 5-shot text is not "
                    "stored here) and a GPQA zip under ../shared/data/gpqa")
    fx = json.loads((FIX / "opencompass-llada-instruct-gpqa.json").read_text(encoding="utf-8"))
    bench = get_benchmark("gpqa", data_file=path)
    for s, want in zip(bench.load()[:3], fx["prompts"]):
        prompt = bench.protocol_prompt(s, gpqa.OC_FORMAT, 5, source=src)
        assert hashlib.sha256(prompt["messages"][0]["content"].encode()).hexdigest() == want["user_content_sha256"]
        assert hashlib.sha256(render_llada_chat(prompt).encode()).hexdigest() == want["prompt_sha256"]
        assert bench.protocol_sample(s, gpqa.OC_FORMAT).reference_answer == want["answer_letter"]
