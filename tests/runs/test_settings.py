"""Settings resolved once (runs/settings.py): command line > preset > sidecar > adapter defaults > defaults for
every field, with provenance; the CLI, the library and lm-eval's model class resolve a preset identically;
lm-eval's chat rendering keeps a prefilled assistant turn open."""

from __future__ import annotations

import json
import re

import pytest
from preset_variants import without_protocol as _without_protocol

from mdlm_probe.adapters import CheckpointInfo
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import DEFAULT_CHAT
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.runs.settings import resolve_settings
from mdlm_probe.tasks.presets import get_preset

SMALL = {"gen_length": 16, "steps": 16, "block_length": 16, "batch_size": 1}
SMALL_ARGS = ["--gen-length", "16", "--steps", "16", "--block-length", "16", "--batch-size", "1"]


def write_gsm8k(folder, n=8):
    rows = [{"question": f"Ann has {i} pens and buys 2 more. How many pens?", "answer": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(n)]
    for name in ("train.jsonl", "test.jsonl"):  # the few-shot examples beside the test set
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "test.jsonl"


def without_protocol(monkeypatch, name):
    """The preset without the protocol fields eval cannot reproduce yet, nor its lm-eval task and layout."""
    _without_protocol(monkeypatch, name, also=("lm_eval_task", "fewshot_as_multiturn"))


def test_each_layer_wins_over_the_ones_below_and_is_named(tmp_path, monkeypatch):
    info = CheckpointInfo(path=tmp_path, adapter="fam", extra={"sampler_defaults": {"top_k": 50, "eps": 0.01}},
                          sidecar={"sampler": {"gen_length": 32, "steps": 32, "block_length": 32, "eps": 0.002,
                                               "seed": 3}, "default_fewshot": 2, "dtype": "float16"})
    without_protocol(monkeypatch, "llada-8b-instruct-gsm8k")
    p = get_preset("llada-8b-instruct-gsm8k")  # gen_length 512, steps 512, remasking, the EOS flags, ...
    st = resolve_settings(model=info, benchmark="gsm8k", preset=p.name, sampler={"steps": 8, "gen_length": 8,
                                                                                  "block_length": 8, "seed": None})
    src = st.provenance
    assert (st.sampler.steps, src["steps"]) == (8, "command line")
    assert (st.sampler.confidence_eos_eot_inf, src["confidence_eos_eot_inf"]) == (True, f"preset {p.name}")
    assert (st.sampler.seed, src["seed"]) == (3, "sidecar")  # None = not given
    assert (st.sampler.eps, src["eps"]) == (0.002, "sidecar") and (st.sampler.top_k, src["top_k"]) == (50, "adapter fam")
    assert (st.sampler.alg_temp, src["alg_temp"]) == (None, "default")
    assert (st.num_fewshot, src["num_fewshot"]) == (p.num_fewshot, f"preset {p.name}")
    assert (st.chat, src["chat"]) == (True, f"preset {p.name}")
    assert (st.dtype, src["dtype"]) == (("bfloat16", f"preset {p.name}") if p.settings.get("dtype") else
                                        ("float16", "sidecar"))
    assert resolve_settings(model=info, benchmark="gsm8k").provenance["dtype"] == "sidecar"
    assert st.given == {"steps": 8, "gen_length": 8, "block_length": 8}
    plain = resolve_settings(model=info, benchmark="gsm8k", num_fewshot=1, dtype="float32")
    assert (plain.num_fewshot, plain.provenance["num_fewshot"]) == (1, "command line")
    assert (plain.chat, plain.provenance["chat"]) == (DEFAULT_CHAT, "default")
    no_side = resolve_settings(model=CheckpointInfo(path=tmp_path, adapter="fam", sidecar=None), benchmark="gsm8k")
    assert (no_side.num_fewshot, no_side.provenance["num_fewshot"]) == (5, "benchmark gsm8k")
    assert (no_side.dtype, no_side.provenance["dtype"]) == (None, "adapter fam")  # the adapter's default dtype
    assert no_side.sampler.steps == no_side.sampler.gen_length  # no sidecar: one block, one token per step


@pytest.mark.parametrize("name, field", [
    ("fast-dllm-dream-v0-base-7b-gsm8k", "lm_eval_task"), ("fast-dllm-dream-v0-base-7b-humaneval", "lm_eval_task")])
def test_eval_and_shift_refuse_what_they_cannot_honour_and_lm_eval_takes_it(name, field, monkeypatch):
    # eval applies the shipped presets' protocols; blanked, the lm-eval task is all that is left to refuse
    _without_protocol(monkeypatch, name)
    p = get_preset(name)
    for command in ("eval", "shift"):
        with pytest.raises(BadInput, match=f"\\({field}\\).*`mdlm-probe lm-eval --preset {name}`"):
            resolve_settings(ckpt="tiny-ce", benchmark=p.benchmark, preset=name, command=command)
    try:  # lm-eval runs the task; it refuses only a protocol field it does not reproduce, never the task
        st = resolve_settings(ckpt="tiny-ce", preset=name, command="lm-eval")
    except BadInput as e:
        assert "lm_eval_task" not in str(e) and "cannot reproduce" in str(e)
        return
    assert st.lm_eval_task == p.lm_eval_task and st.provenance["lm_eval_task"] == f"preset {name}"


@pytest.mark.parametrize("command", ["eval", "shift"])
def test_a_preset_whose_protocol_eval_applies_is_resolved_not_refused_for_its_lm_eval_task(tmp_path, command):
    """fast-dllm-llada-8b-instruct-gsm8k names lm-eval's gsm8k task, but eval and shift build that task's prompt
    themselves (runs/protocol.py): on a checkpoint with a chat template it resolves; without one it is refused
    naming prompt_format."""
    name = "fast-dllm-llada-8b-instruct-gsm8k"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages[0]['content'] }}"}))
    st = resolve_settings(model=CheckpointInfo(path=tmp_path, adapter="fam", sidecar=None), benchmark="gsm8k",
                          preset=name, command=command)
    assert st.chat is True and st.num_fewshot == 5 and st.provenance["num_fewshot"] == f"preset {name}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({}))
    with pytest.raises(BadInput, match=f"^--preset {name} sets prompt_format='fast-dllm:gsm8k'.*no chat template$"):
        resolve_settings(model=CheckpointInfo(path=tmp_path, adapter="fam", sidecar=None), benchmark="gsm8k",
                         preset=name, command=command)


def test_library_shift_takes_the_preset_s_benchmark_and_the_cli_s_chat_default(monkeypatch):
    from mdlm_probe.runs.shift import ShiftGrid, shift_settings

    without_protocol(monkeypatch, "llada-1.5-gsm8k")

    st = shift_settings(["tiny-ce"], ShiftGrid(modes=["delete"], fractions=[0.1]), sampler=SMALL,
                        benchmark="gsm8k", preset="llada-1.5-gsm8k")["tiny-ce"]
    assert st.chat is True and st.num_fewshot == get_preset("llada-1.5-gsm8k").num_fewshot
    plain = shift_settings(["tiny-ce"], ShiftGrid(modes=["delete"], fractions=[0.1]), sampler=SMALL)["tiny-ce"]
    assert plain.chat is DEFAULT_CHAT and plain.num_fewshot == 0  # tiny-ce's sidecar: default_fewshot 0


# ----------------------------------------------------------------------------------------- three paths, one result
@pytest.mark.parametrize("name", ["llada-8b-instruct-gsm8k", "llada-1.5-gsm8k"])
def test_cli_library_and_lm_eval_resolve_a_preset_identically(tmp_path, cli, capsys, monkeypatch, name):
    lm_eval_model = pytest.importorskip("mdlm_probe.runs.lm_eval_model")
    from mdlm_probe.cli.lm_eval import with_preset_args

    data = write_gsm8k(tmp_path)
    # as shipped: where eval cannot reproduce the protocol, the command line and the library refuse alike
    try:
        resolve_settings(ckpt="tiny-ce", benchmark="gsm8k", preset=name, sampler=SMALL)
    except BadInput as e:
        assert cli("eval", "gsm8k", "--preset", name, "--ckpt", "tiny-ce", "--data-file", str(data), "--limit", "1",
                   "--out", str(tmp_path / "refused"), "--no-progress", *SMALL_ARGS) == 2
        assert capsys.readouterr().err.strip() == f"mdlm-probe: error: {e}"
        with pytest.raises(BadInput, match="^" + re.escape(str(e)) + "$"):
            run_eval("tiny-ce", "gsm8k", tmp_path / "refused", sampler_overrides=dict(SMALL), limit=1, preset=name,
                     data_file=data)
        without_protocol(monkeypatch, name)  # then compare what the three paths resolve for the rest
    code = cli("eval", "gsm8k", "--preset", name, "--ckpt", "tiny-ce", "--data-file", str(data), "--limit", "1",
               "--out", str(tmp_path / "cli"), "--no-progress", *SMALL_ARGS)
    assert code == 0, capsys.readouterr().err
    run_eval("tiny-ce", "gsm8k", tmp_path / "lib", sampler_overrides=dict(SMALL), limit=1, preset=name,
             data_file=data)
    cfgs = [json.loads((tmp_path / d / "config.json").read_text()) for d in ("cli", "lib")]
    cli_run, lib_run = ({"sampler": c["sampler"], "chat": c["chat"], "num_fewshot": c["num_fewshot"],
                         "dtype": c["dtype"]} for c in cfgs)
    lm = lm_eval_model.MDLMProbeLM(pretrained="tiny-ce", preset=name, **SMALL)
    argv = with_preset_args(["--model_args", f"pretrained=tiny-ce,preset={name}", "--tasks", "gsm8k"], name,
                            in_model_args=True)  # what `mdlm-probe lm-eval -- --model_args preset=NAME` runs
    lm_run = lm.settings.resolved()
    assert cli_run == lib_run == lm_run
    assert argv[argv.index("--num_fewshot") + 1] == str(lm_run["num_fewshot"]) == str(get_preset(name).num_fewshot)
    assert ("--apply_chat_template" in argv) is lm_run["chat"] is True
    # and each value came from the same layer (model_args are lm-eval's command line)
    same = {k: v.replace("model_args", "command line") for k, v in lm.settings.provenance.items()
            if k in cfgs[0]["card"]["provenance"]}
    assert cfgs[0]["card"]["provenance"] == cfgs[1]["card"]["provenance"]
    assert same == {k: v for k, v in cfgs[0]["card"]["provenance"].items() if k in same}


# ----------------------------------------------------------------------------------------- lm-eval chat rendering
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_a_prefilled_assistant_turn_is_continued_not_closed(tiny_random):
    """lm-eval hands a gen_prefix task's history (humaneval_instruct, mbpp_instruct) ending with the prefilled
    assistant turn and add_generation_prompt=False; the model must go on writing that turn."""
    lm_eval_model = pytest.importorskip("mdlm_probe.runs.lm_eval_model")
    lm = lm_eval_model.MDLMProbeLM(pretrained=tiny_random, gen_length=8, steps=8, block_length=8)
    saved = getattr(lm.tokenizer, "chat_template", None)
    lm.tokenizer.chat_template = TEMPLATE
    try:
        history = [{"role": "user", "content": "Write f."}, {"role": "assistant", "content": "```python\n"}]
        text = lm.apply_chat_template(history, add_generation_prompt=False)
        assert text.startswith("<|user|>Write f.<|end|><|assistant|>```python")
        assert text.count("<|end|>") == 1 and not text.rstrip().endswith("<|end|>")  # the assistant turn is open
        asked = lm.apply_chat_template(history[:1], add_generation_prompt=True)
        assert asked == "<|user|>Write f.<|end|><|assistant|>"  # a plain request still gets the generation prompt
    finally:
        lm.tokenizer.chat_template = saved


def test_lm_eval_records_when_its_arguments_overrode_the_preset_s_chat(tiny_random, monkeypatch):
    lm_eval_model = pytest.importorskip("mdlm_probe.runs.lm_eval_model")
    name = "llada-8b-instruct-gsm8k"  # published with the chat template
    without_protocol(monkeypatch, name)
    lm = lm_eval_model.MDLMProbeLM(pretrained=tiny_random, preset=name, gen_length=8, steps=8, block_length=8)
    assert lm.settings.chat is True and lm.settings.provenance["chat"] == f"preset {name}"
    lm.chat_template(False)  # lm-eval run without --apply_chat_template
    card = lm.get_model_info()["mdlm_probe_card"]
    assert card["chat"] is False and card["provenance"]["chat"].startswith("lm-eval arguments")
    assert card["preset_protocol"]["num_fewshot"] == get_preset(name).num_fewshot

