"""Make tests/fixtures/protocols/fastdllm-dream-base-{gsm8k,humaneval}.json: the prompts and answer extractions of
Fast-dLLM's Dream evaluation (the ten fast-dllm-dream-v0-base-7b-* presets), produced by running Fast-dLLM's own
code outside this repository.

Reference code: NVlabs/Fast-dLLM at 24cc59e75f20a6384bae8c905965bb090b96388e, `dream/eval.py` (the lm-eval model
class `Dream`), `dream/eval_gsm8k.sh` / `dream/eval_humaneval.sh` (the five runs per benchmark) and
`dream/postprocess_code.py` + `dream/sanitize.py` (HumanEval), with lm-eval 0.4.8 (its `requirements.txt`).
A checkout of the needed files is enough:

    git --git-dir=MIRROR archive 24cc59e75f20a6384bae8c905965bb090b96388e dream requirements.txt | tar -x -C FASTDLLM
    python analyses/make_fastdllm_dream_protocol.py --fast-dllm FASTDLLM --python-lmeval V48/bin/python \
        --data ../shared/data

(V48: the lm-eval 0.4.8 + transformers 4.49.0 interpreter of analyses/make_protocol_goldens.py.)

What runs: each `accelerate launch eval.py --model dream --model_args ...` line of the two scripts is read from the
script (its variables expanded as bash would) and the model is built as lm-eval's CLI builds it,
`Dream.create_from_arg_string(model_args, {"batch_size": ..., "device": ...})`, so `Dream.__init__` sets every
attribute; only `_create_model_and_tokenizer` is replaced (no weights: a stand-in tokenizer and a generator that
records the prompt and the arguments `_generate_batch` passes, and returns a canned output). Then lm-eval 0.4.8's
task builds the requests (the few-shot seed 1234 and num_fewshot rule of `simple_evaluate`), `Dream.generate_until`
turns them into prompts and cuts the canned outputs, the task's filters extract (gsm8k) and Fast-dLLM's
`postprocess_code.py` runs as a script on lm-eval-style samples (HumanEval). All five runs of a script go through
this; the fixture keeps the first's prompts and answers and records, per run, whether its prompts and answers equal
the first's, the `diffusion_generate` arguments and which generator `generate_until` bound.

Stand-ins: the tokenizer (a lossless byte-level one with Dream's special tokens; its bos text stands for Dream's
unknown bos_token and is removed from the stored prompts), the device ("cpu"), the datasets (local copies).
This script writes the two fixtures and merges their presets into index.json; analyses/make_protocol_goldens.py
rewrites index.json from its own fixtures, so run this one after it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from make_protocol_fixtures import DATA, FAST, STANDIN, files, lmeval_fixture
from make_protocol_goldens import (FASTDLLM_COMMIT, HUMANEVAL_OUTPUTS, MATH_OUTPUTS, N_PROMPTS, Canned,
                                   _DiffusionStub, build, lm_eval_task, postprocess_code, redirect_load_dataset,
                                   run_outputs, standin_tokenizer, stub_code_eval)
from reference_runs import check_blobs, write_fixture

ROOT = Path(__file__).resolve().parents[1]
# the files read, pinned (git blob hashes at 24cc59e)
PINNED = {"dream/eval.py": "56e419de856c7e7913495f22d83dda3335f0a250",
          "dream/eval_gsm8k.sh": "16d93b167e4a53583fb6e5c374b2680ba933306a",
          "dream/eval_humaneval.sh": "e6f2e073005f9590ee68490d224b70cdb4e75daa",
          "dream/postprocess_code.py": "69f732e2b3a14c5bc6d3886652ea6b689046b1e8",
          "dream/sanitize.py": "70ac07cec404c73774a4e3958aeefcfbd93df269",
          "dream/model/generation_utils.py": "51b300fd81ed5a8d7f0d528603e86d33d417560a",
          "dream/model/generation_utils_block.py": "d8ca61f2e20ee807bb3911ff049ceeb2142979b6",
          "requirements.txt": "f75bf873eecace307865deea4b7a470fb7c243f1"}
BOS = "<|bos_token|>"  # the stand-in tokenizer's bos text (Dream's real bos_token is not available offline)
# script label (its comment) -> preset suffix
VARIANTS = {"baseline": "-baseline", "prefix cache": "-prefix-cache", "parallel": "",
            "prefix cache+parallel": "-prefix-cache-parallel", "dual cache+parallel": "-dual-cache-parallel"}
TASKS = {"gsm8k": ("dream/eval_gsm8k.sh", MATH_OUTPUTS), "humaneval": ("dream/eval_humaneval.sh", HUMANEVAL_OUTPUTS)}


# ----------------------------------------------------------------------------------------- the eval scripts
def _expand(text: str, env: dict) -> str:
    text = re.sub(r"\$\(\(\s*(\w+)\s*/\s*(\w+)\s*\)\)", lambda m: str(int(env[m[1]]) // int(env[m[2]])), text)
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m[1] or m[2]], text)


def script_runs(path: Path) -> list[dict]:
    """Each `accelerate launch eval.py` command of a Fast-dLLM eval script: its label (the comment above it),
    first line number, model_args, and the lm-eval CLI options, with the script's variables expanded."""
    env, runs, label = {}, [], None
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line, start = lines[i].strip(), i + 1
        while line.endswith("\\") and i + 1 < len(lines):  # a command continued on the next lines
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        m = re.fullmatch(r"(\w+)=(.*)", line)
        if m:
            env[m[1]] = _expand(m[2].strip('"'), env)
        elif line.startswith("#") and not line.startswith("##"):
            label = line.lstrip("# ").strip()
        elif line.startswith("accelerate launch eval.py"):
            argv = shlex.split(_expand(line, env))
            opts = {a[2:]: argv[k + 1] for k, a in enumerate(argv) if a.startswith("--") and k + 1 < len(argv)
                    and not argv[k + 1].startswith("--")}
            runs.append({"label": label, "line": start, "model_args": opts["model_args"], "tasks": opts["tasks"],
                         "num_fewshot": int(opts["num_fewshot"]) if "num_fewshot" in opts else None,
                         "batch_size": opts.get("batch_size", "1")})
    return runs


# ----------------------------------------------------------------------------------------- worker (lm-eval 0.4.8)
class _RecordingStub(_DiffusionStub):
    """The generator stand-in; also records what `generate_until` binds as the generator (use_cache picks
    generation_utils_block or generation_utils) and the arguments `_generate_batch` passes it."""

    def __init__(self, canned):
        super().__init__(canned)
        object.__setattr__(self, "bound", {})
        object.__setattr__(self, "calls", [])

    def __setattr__(self, name, value):
        if name in ("diffusion_generate", "_sample"):  # a bound method of Fast-dLLM's DreamGenerationMixin
            self.bound[name] = f"{value.__func__.__module__}.{value.__func__.__qualname__}"
            return
        object.__setattr__(self, name, value)

    def diffusion_generate(self, prompt_ids, attention_mask=None, max_new_tokens=None, **kw):
        self.calls.append({"max_new_tokens": max_new_tokens, **kw})
        return super().diffusion_generate(prompt_ids, attention_mask, max_new_tokens)


def make_dream(src: Path, run: dict):
    """Fast-dLLM's `Dream`, built by its own __init__ from the script's model_args, without weights."""
    sys.path.insert(0, str(src / "dream"))
    import eval as mod  # Fast-dLLM dream/eval.py

    tok = standin_tokenizer(BOS, "<|endoftext|>", "<|endoftext|>", ["<|im_start|>", "<|im_end|>"])
    canned = Canned(tok)
    stub = _RecordingStub(canned)
    seen = {}

    def create(self, pretrained, dtype, trust_remote_code):  # stands for DreamModel/AutoTokenizer.from_pretrained
        seen.update(pretrained=pretrained, dtype=str(dtype), trust_remote_code=trust_remote_code)
        self.model, self.tokenizer = stub, tok

    mod.Dream._create_model_and_tokenizer = create
    # lm-eval 0.4.8 evaluator.py:209-216 (device: the CLI's default None is dropped; "cpu" stands in for cuda)
    lm = mod.Dream.create_from_arg_string(run["model_args"], {"batch_size": run["batch_size"], "device": "cpu"})
    return lm, canned, stub, seen


def _problems(lm, canned, insts) -> list[dict]:
    canned.outputs, canned.prompts = [""] * len(insts), []
    lm.generate_until(insts)  # the model-side prompt of each request
    return [{"doc_id": inst.doc_id, "problem_id": inst.doc.get("task_id", inst.doc_id), "context": inst.arguments[0],
             "gen_kwargs": inst.arguments[1], "model_prompt": p} for inst, p in zip(insts, canned.prompts)]


def run_one(src: Path, name: str, run: dict, outputs: list[str]) -> dict:
    lm, canned, stub, seen = make_dream(src, run)
    task = lm_eval_task(name, run["num_fewshot"])
    keys = ("generation_kwargs", "target_delimiter", "fewshot_delimiter", "doc_to_text", "fewshot_split", "test_split")
    entry = {"num_fewshot": task.get_config("num_fewshot"), "config": {k: task.get_config(k) for k in keys},
             "problems": _problems(lm, canned, build(task, lm, N_PROMPTS))}
    if name == "gsm8k":  # lm-eval gives each rank its own few-shot generator: prompts depend on world size
        entry["world_size_8"] = []
        for r in range(N_PROMPTS):
            i8 = build(lm_eval_task(name, run["num_fewshot"]), lm, N_PROMPTS, rank=r, world_size=8)
            entry["world_size_8"].append({"rank": r, "doc_id": i8[0].doc_id, "context": i8[0].arguments[0]})
    task = lm_eval_task(name, run["num_fewshot"])
    inst0 = build(task, lm, 1)[0]
    entry["extraction_problem"] = {"doc_id": inst0.doc_id, "problem_id": inst0.doc.get("task_id", inst0.doc_id)}
    cases = run_outputs(lm, canned, task, inst0, outputs, "<|im_end|>", "<|endoftext|>")
    if name == "humaneval":  # dream/eval_humaneval.sh's last line: postprocess_code.py on the samples file
        for c, done in zip(cases, postprocess_code(src / "dream/postprocess_code.py", inst0.doc,
                                                   [c["model_returned"] for c in cases])):
            c["postprocess_code"] = done
    entry["extraction"] = cases
    keep = ("max_length", "add_bos_token", "escape_until", "if_apply_chat_template", "use_cache", "dual_cache",
            "max_new_tokens", "diffusion_steps", "alg", "threshold", "temperature", "top_p", "top_k", "alg_temp")
    entry["run"] = {**run, "model_class_attributes": {k: getattr(lm, k) for k in keep}, "from_pretrained": seen,
                    "generator_bound": dict(stub.bound), "diffusion_generate_kwargs": stub.calls[0]}
    return entry


def worker(src: str, data: str, out: str) -> None:
    import importlib.metadata as md

    src = Path(src)
    redirect_load_dataset(Path(data))
    stub_code_eval()
    res = {"lm_eval": md.version("lm_eval"), "transformers": md.version("transformers"), "python": sys.version,
           "tasks": {}}
    for name, (script, outputs) in TASKS.items():
        runs = [r for r in script_runs(src / script) if r["tasks"] == name]
        res["tasks"][name] = [run_one(src, name, r, outputs) for r in runs]
    Path(out).write_text(json.dumps(res, ensure_ascii=False), encoding="utf-8")


# ----------------------------------------------------------------------------------------- driver
def _same(a: dict, b: dict) -> dict:
    """Whether run `a` built the same prompts and returned/extracted the same answers as run `b`."""
    return {"prompts": [p["model_prompt"] for p in a["problems"]] == [p["model_prompt"] for p in b["problems"]]
            and a.get("world_size_8") == b.get("world_size_8"),
            "extraction": a["extraction"] == b["extraction"]}


def _run_row(e: dict, first: dict, preset: str, script: str) -> dict:
    r = e["run"]
    return {"preset": preset, "script_line": f"{script}:{r['line']}", "label": r["label"],
            "model_args": r["model_args"],
            "num_fewshot_option": r["num_fewshot"], "model_class_attributes": r["model_class_attributes"],
            "from_pretrained": r["from_pretrained"], "generator_bound": r["generator_bound"],
            "diffusion_generate_kwargs": r["diffusion_generate_kwargs"], "same_as_first_run": _same(e, first)}


def _settings(task: str, first: dict) -> dict:
    humaneval = task == "humaneval"
    return {"apply_chat_template": False, "fewshot_as_multiturn": False, "fewshot_random_seed": 1234, "world_size": 1,
            "model_class": "dream/eval.py Dream (built by Dream.__init__ from each script line's model_args), "
                           "generate_until -> _generate_batch",
            "add_bos_token": True, "dtype": first["run"]["from_pretrained"]["dtype"],
            "bos": "tokenizer.bos_token is prepended as text before tokenizing (eval.py:296-297); the prompts below "
                   "are without it",
            "escape_until": humaneval,
            "truncation": "eval.py:300-302 compares len(prompt_ids) (the batch size, 1) with max_length - "
                          "max_new_tokens (2048 - 256): the prompt is never cut",
            "stop_rule": "decode with special tokens and keep what precedes the first eos_token text "
                         "(eval.py:327-330); "
                         + ("escape_until=true: no `until` cut (eval.py:376-380); postprocess_code.py afterwards"
                            if humaneval else "then split at each `until` string in turn (eval.py:376-380)")}


def _notes(task: str, fx: dict, out: Path) -> list[str]:
    notes = ["The stand-in tokenizer's bos text was removed from `prompt`; the real one is Dream's bos_token "
             "(prepended as text: add_bos_token=true on every script line).",
             "Special tokens other than the eos are not removed from the answer (eval.py decodes without "
             "skip_special_tokens): see the '<|im_end|>' cases.",
             "`runs`: every `accelerate launch` line of the script went through the same code; prompts and "
             "answers are the first run's, and each run says whether its own were equal. The decoders differ "
             "(`generator_bound`, `diffusion_generate_kwargs`), the prompt and the answer handling do not."]
    other = {"gsm8k": ("lmeval048-llada-base-gsm8k.json", "prompts"),
             "humaneval": ("dream-base-humaneval.json", "prompts and extraction")}[task]
    path = out / other[0]
    if path.exists():
        ref = json.loads(path.read_text(encoding="utf-8"))
        same_prompts = [p["prompt"] for p in ref["prompts"]] == [p["prompt"] for p in fx["prompts"]] and \
            ref.get("prompts_world_size_8") == fx.get("prompts_world_size_8")
        same_ex = [(c["model_returned"], c.get("postprocess_code")) for c in ref["extraction"]] == \
            [(c["model_returned"], c.get("postprocess_code")) for c in fx["extraction"]]
        notes.append(f"Compared with {other[0]} when this fixture was made: prompts "
                     f"{'equal' if same_prompts else 'differ'}"
                     + (f", extraction (model_returned, postprocess_code) {'equal' if same_ex else 'differs'}"
                        if task == "humaneval" else "")
                     + (" (Fast-dLLM's dream/eval.py, postprocess_code.py and sanitize.py differ from DreamLM/Dream's "
                        "eval/ files only by the license header, the chat-template branch (off here), the cache/"
                        "threshold arguments and logging)" if task == "humaneval" else
                        " (the same lm-eval 0.4.8 task, few-shot seed and shot count; LLaDA-Base's prompt is the "
                        "context as is, Fast-dLLM's Dream prepends the bos text, not stored)") + ".")
    return notes


NOT_REPRODUCED = ["Dream's bos_token text (prepended) is not known offline",
                  "prompts depend on the number of accelerate processes (few-shot draws per rank); fixtures are "
                  "world size 1, plus world size 8 for gsm8k"]


def assemble(raw: dict, src: Path, out: Path) -> dict:
    fixtures = {}
    for task, (script, _) in TASKS.items():
        entries = raw["tasks"][task]
        first = entries[0]
        presets = [f"fast-dllm-dream-v0-base-7b-{task}{VARIANTS[e['run']['label']]}" for e in entries]
        source = {"repo": FAST, "files": files(src, list(PINNED))}
        harness = {"lm_eval": raw["lm_eval"], "transformers": raw["transformers"],
                   "python": raw["python"].split()[0], "pinned_by": "requirements.txt:1-2 (transformers==4.49.0, "
                                                                    "lm_eval==0.4.8)"}
        name = f"fastdllm-dream-base-{task}"
        fx = lmeval_fixture(name, presets, source, harness, task, first, _settings(task, first),
                            lambda p: {"problem_id": p["problem_id"], "prompt": p["model_prompt"].replace(BOS, "", 1)},
                            [])
        fx["runs"] = [_run_row(e, first, p, script) for e, p in zip(entries, presets)]
        fx["stand_ins"] = [STANDIN + "; built by Dream.__init__ (Dream.create_from_arg_string, as lm-eval's CLI "
                           "does) with only _create_model_and_tokenizer replaced; device 'cpu' instead of the "
                           "default 'cuda'", DATA]
        fx["notes"] = _notes(task, fx, out)
        fixtures[f"{name}.json"] = fx
    return fixtures


def merge_index(out: Path, fixtures: dict) -> None:
    path = out / "index.json"
    index = json.loads(path.read_text(encoding="utf-8"))
    for fname, fx in fixtures.items():
        for preset in fx["presets"]:
            index["presets"][preset] = {"fixtures": [fname], "not_reproduced": NOT_REPRODUCED}
    index["presets"] = dict(sorted(index["presets"].items()))
    write_fixture(path, index, ensure_ascii=False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast-dllm", type=Path, required=True,
                    help="checkout of NVlabs/Fast-dLLM at " + FASTDLLM_COMMIT[:7])
    ap.add_argument("--python-lmeval", required=True, help="interpreter with lm_eval==0.4.8 and transformers==4.49.0")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "protocols")
    args = ap.parse_args(argv)
    src = args.fast_dllm.resolve()
    check_blobs(src, PINNED, FAST)
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp) / "out.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        p = subprocess.run([args.python_lmeval, str(Path(__file__).resolve()), "--worker", str(src),
                            str(args.data.resolve()), str(res)], env=env, cwd=tmp, capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"worker failed:\n{p.stderr[-4000:]}")
        raw = json.loads(res.read_text(encoding="utf-8"))
    fixtures = assemble(raw, src, args.out)
    for fname, fx in fixtures.items():
        write_fixture(args.out / fname, fx, ensure_ascii=False)
        print(f"wrote {args.out / fname}")
    merge_index(args.out, fixtures)
    print(f"merged {sum(len(f['presets']) for f in fixtures.values())} presets into {args.out / 'index.json'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:5])
    else:
        main()
