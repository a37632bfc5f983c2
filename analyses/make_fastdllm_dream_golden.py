"""Make tests/fixtures/fastdllm_dream_golden.json: token ids from Fast-dLLM's released Dream decoders.

The reference is NVlabs/Fast-dLLM at commit 24cc59e75f20a6384bae8c905965bb090b96388e, folder dream/:
`model/generation_utils.py` (the decoder `dream/eval.py` binds without `use_cache`: Dream's step plan, or with
`alg="confidence_threshold"` its threshold rule), `model/generation_utils_block.py` (the block decoder it binds
with `use_cache=true`: prefix cache, or dual cache with `dual_cache=true`, each with the entropy plan or the
threshold rule) and `model/modeling_dream.py` (its Dream modeling file, with `past_key_values`, `dual_cache` and
`replace_position`). None of it is in this repository. Fast-dLLM pins transformers 4.49.0, so it runs in a separate
virtual environment that borrows this one's torch (CPU):

    git clone https://github.com/NVlabs/Fast-dLLM /tmp/fastdllm && git -C /tmp/fastdllm checkout 24cc59e75f20
    python -m venv --system-site-packages /tmp/fastdllm-venv
    /tmp/fastdllm-venv/bin/pip install transformers==4.49.0
    python analyses/make_fastdllm_dream_golden.py --ref /tmp/fastdllm/dream --python /tmp/fastdllm-venv/bin/python

(the script checks the git blob hashes of the reference files). This side (transformers 5) builds the checkpoint
named in CHECKPOINT with the project's Dream-architecture builder (tests/helpers/arch_checkpoints.py, or
tests/arch_checkpoints.py before the tests were regrouped): seeded weights, the output row of <|mask|> zeroed, the
output layer scaled so that some proposals clear the thresholds; a test rebuilds the identical checkpoint from the
fixture's "checkpoint" entry. The worker, under the other interpreter, copies it to a scratch folder, adds a
generation_config.json (Fast-dLLM's `DreamModel.from_pretrained` reads one; the decoders never use it: they build
their settings from the model config and the call's arguments), loads it as `dream/eval.py` does
(`model.modeling_dream.DreamModel.from_pretrained(path, torch_dtype=float64)`; its logits equal the project's
modeling_dream_arch.py with positions 0..L-1, difference 0.0) and binds `diffusion_generate` and `_sample` of
generation_utils (no cache) or generation_utils_block (caches) to the model, as `Dream.generate_until` does.

Each call is the one `Dream._generate_batch` makes, with eval.py's defaults for what it passes:
`diffusion_generate(prompt_ids, attention_mask=prompt_ids.ne(pad), max_new_tokens=G, output_history=False,
return_dict_in_generate=True, steps=S, temperature=0.0, top_p=None, top_k=None, alg=ALG, alg_temp=0.0,
threshold=T, dual_cache=D)`, ALG = "entropy" (eval.py's default and its scripts' baseline/cache runs) or
"confidence_threshold" (its "parallel" runs), plus `block_length=B` for the block decoder (eval.py never passes
it, so there it is always the decoder's default, 32; generation_utils.py has no blocks and ignores it).

Cases: every mode (none, none + threshold, prefix, dual, prefix + threshold, dual + threshold) x GRID x the
thresholds (0.9 and 0.3) where a threshold applies, plus EDGE cases; each on every prompt alone (batch of one, no
padding) and on BATCHES (left-padded, and one of equal lengths). A batch Fast-dLLM's code cannot decode is recorded
with the exception it raised, or, when it loops without committing (its threshold paths write row 0 only), as
"no progress" after a bound on forwards. The worker traces each decode: NFE (forward calls), the tokens each forward's
step committed (per row), and the margins the identity rests on, over the positions that can commit: the smallest
top-1 minus top-2 logit gap, the smallest |confidence - threshold| (also with the confidence taken without
<|mask|>'s probability), and the smallest gap between two entropy confidences of a step. It refuses a decode where
<|mask|> would be proposed at such a position. Only prompts, settings, output ids, NFE, commits per step, margins
and provenance are written.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from reference_runs import check_blobs, check_ran_under, reference_parser, run_worker, worker_or_main, write_fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "fastdllm_dream_golden.json"
SOURCE = {"repository": "NVlabs/Fast-dLLM", "commit": "24cc59e75f20a6384bae8c905965bb090b96388e",
          "files": {"dream/eval.py": "56e419de856c7e7913495f22d83dda3335f0a250",  # git blob hashes
                    "dream/model/__init__.py": "98850f1a08051daad7e2199a758590a3ee867a01",
                    "dream/model/configuration_dream.py": "d178a379ebbc612eb5e68268e9404bc104a7edcf",
                    "dream/model/generation_utils.py": "51b300fd81ed5a8d7f0d528603e86d33d417560a",
                    "dream/model/generation_utils_block.py": "d8ca61f2e20ee807bb3911ff049ceeb2142979b6",
                    "dream/model/modeling_dream.py": "244f4ce743eea24678c761a5e703f06dcd0d83a7"},
          "transformers": "4.49.0"}
# The checkpoint: the project's Dream-architecture builder (Qwen2 layout, grouped keys/values as Dream-7B), its
# output layer scaled up so that some proposals clear 0.9, <|mask|>'s output row zero; loaded in float64.
CHECKPOINT = {"builder": "tests/helpers/arch_checkpoints.py::dream_arch_checkpoint", "dtype": "float64",
              "size": {"seed": 5, "head_scale": 12.0, "hidden_size": 64, "num_hidden_layers": 3,
                       "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 160}}
MASK_ID, PAD_ID = 2, 0  # the builder's config (Dream's roles: <|mask|>, pad = eos = <|endoftext|>)
TEXTS = ["Ann has 10 pens. She buys 3.", "Hi", "12+30=", "f(x)=2", "The cat sat on the mat"]  # 28, 2, 6, 6, 22
GRID = [(16, 8, 8), (32, 16, 16), (32, 32, 8), (32, 8, 16)]  # (gen length, steps, block length)
THRESHOLDS = [0.9, 0.3]
# Steps = number of blocks: one step per block, which the block decoder's plan path cuts short (see the notes).
EDGE = [(16, 2, 8)]
MODES = {  # name: (decoder file, alg, dual_cache)
    "none": ("generation_utils", "entropy", False),
    "none_threshold": ("generation_utils", "confidence_threshold", False),
    "prefix": ("generation_utils_block", "entropy", False),
    "dual": ("generation_utils_block", "entropy", True),
    "prefix_threshold": ("generation_utils_block", "confidence_threshold", False),
    "dual_threshold": ("generation_utils_block", "confidence_threshold", True),
}


def encode(text: str) -> list[int]:
    """Prompt text -> ids of the builder's character tokenizer (Dream's specials, then printable characters)."""
    import string

    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    vocab = {t: i for i, t in enumerate(["<|endoftext|>", "<|im_end|>", "<|mask|>"] + chars)}
    return [vocab[c] for c in text]


PROMPTS = [encode(t) for t in TEXTS]


def batches() -> list[dict]:
    """Two left-padded batches (unequal lengths) and one batch of equal lengths (no padding: batching alone)."""
    return [{"name": "padded3", "prompts": [0, 1, 2]}, {"name": "padded2", "prompts": [4, 3]},
            {"name": "equal2", "prompts": [2, 3]}]  # indices into TEXTS


def cases() -> list[dict]:
    out = []
    for mode, (decoder, alg, dual) in MODES.items():
        for g, s, b in GRID + EDGE:
            if (g, s, b) in EDGE and (mode.startswith("none") or "threshold" in mode):
                continue  # the edge concerns the block decoder's plan path only
            for t in (THRESHOLDS if alg == "confidence_threshold" else [None]):
                block = None if decoder == "generation_utils" else b  # generation_utils.py has no blocks
                name = f"{mode}_g{g}_s{s}" + (f"_b{b}" if block else "") + (f"_t{t}" if t else "")
                if any(c["name"] == name for c in out):
                    continue
                out.append({"name": name, "mode": mode, "decoder": f"dream/model/{decoder}.py",
                            "settings": {"gen_length": g, "steps": s, "block_length": block, "alg": alg,
                                         "threshold": t, "dual_cache": dual, "temperature": 0.0, "top_p": None,
                                         "top_k": None, "alg_temp": 0.0},
                            "edge": (g, s, b) in EDGE})
    return out


# ----------------------------------------------------------------------------------------- reference side
class NoProgress(RuntimeError):
    pass


def worker(ckpt: str, ref: str, todo_path: str, out_path: str) -> None:
    """Runs under transformers 4.49.0: Fast-dLLM's Dream decoders on every case, as dream/eval.py calls them."""
    import types

    import torch
    import transformers

    sys.path.insert(0, ref)  # eval.py's imports: `from model.modeling_dream import DreamModel`, ...
    from model import generation_utils, generation_utils_block
    from model.modeling_dream import DreamModel

    scratch = Path(tempfile.mkdtemp()) / "ckpt"
    shutil.copytree(ckpt, scratch)
    (scratch / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 0,
                                                               "pad_token_id": PAD_ID, "mask_token_id": MASK_ID}))
    model = DreamModel.from_pretrained(str(scratch), torch_dtype=torch.float64, trust_remote_code=True).eval()
    from safetensors.torch import load_file
    saved, loaded = load_file(str(scratch / "model.safetensors")), model.state_dict()
    assert set(saved) == set(loaded), f"weights do not load cleanly: {set(saved) ^ set(loaded)}"
    assert all(torch.equal(saved[k].double(), loaded[k]) for k in saved)
    mods = {"dream/model/generation_utils.py": generation_utils,
            "dream/model/generation_utils_block.py": generation_utils_block}

    state: dict = {}

    def pre_hook(module, args, kwargs):
        ids = args[0] if args else kwargs["input_ids"]
        canvas = ids._base if ids._base is not None else ids  # the cached steps forward views of the canvas
        state["nfe"] += 1
        state["masks"].append((canvas == MASK_ID).sum(1).tolist())
        state["call"] = {"offset": ids.storage_offset(), "width": ids.shape[1], "slice": ids.clone(),
                         "full": ids.shape[1] == canvas.shape[1]}
        if ids.shape[1] == canvas.shape[1]:
            state["full_forwards"] += 1
        if state["nfe"] > state["bound"]:
            raise NoProgress(f"no progress: stopped after {state['nfe'] - 1} forwards; masks per row "
                             f"{(canvas == MASK_ID).sum(1).tolist()}")

    model.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def margins(logits, threshold, relevant):
        """Margins over the rows of (N, V) `logits` that can commit (bool `relevant`)."""
        lg = logits[relevant].double()
        if not lg.numel():
            return
        assert not bool((lg.argmax(-1) == MASK_ID).any()), "<|mask|> would be proposed"
        m = state["margins"]
        top2 = lg.topk(2, dim=-1).values
        m["argmax_gap"] = min(m.get("argmax_gap", 1e9), float((top2[:, 0] - top2[:, 1]).min()))
        p = torch.softmax(lg, -1)
        best = p.max(-1).values
        m["mask_prob_max"] = max(m.get("mask_prob_max", 0.0), float(p[:, MASK_ID].max()))
        if threshold is not None:
            ours = best / (1 - p[:, MASK_ID])
            flips = (best >= threshold) != (ours >= threshold)
            m["mask_share_flips"] = m.get("mask_share_flips", 0) + int(flips.sum())
            gap = torch.minimum((best - threshold).abs(), (ours - threshold).abs()).min()
            m["threshold_gap"] = min(m.get("threshold_gap", 1e9), float(gap))
        elif lg.shape[0] > 1:
            ent = (p * torch.log(p + 1e-10)).sum(-1).sort().values
            m["entropy_gap"] = min(m.get("entropy_gap", 1e9), float((ent[1:] - ent[:-1]).min()))

    def traced_sample_tokens(released, case):
        st = case["settings"]

        def sample_tokens(logits, *a, **kw):
            call, P = state["call"], state["prompt_len"]
            thr = st["threshold"] if st["alg"] == "confidence_threshold" else None
            if logits.dim() == 3:  # the block decoder's block-start full forward: only the block's first position
                cbs = P + (state["full_forwards"] - 1) * st["block_length"]
                margins(logits[:, cbs], None, torch.ones(logits.shape[0], dtype=torch.bool))
            elif call["full"]:  # no cache: every masked position can commit
                margins(logits, thr, torch.ones(logits.shape[0], dtype=torch.bool))
            else:  # a cached step: the masked positions of the forwarded rows, row-major; those inside the block
                where = (call["slice"] == MASK_ID).nonzero()
                inside = where[:, 1] < st["block_length"]
                if logits.shape[0] == int(inside.sum()) and logits.shape[0] != where.shape[0]:
                    inside = torch.ones(logits.shape[0], dtype=torch.bool)  # the plan path drops the others first
                margins(logits, thr, inside)
            return released(logits, *a, **kw)
        return sample_tokens

    def decode(case, rows):
        st = case["settings"]
        mod = mods[case["decoder"]]
        model.diffusion_generate = types.MethodType(mod.DreamGenerationMixin.diffusion_generate, model)
        model._sample = types.MethodType(mod.DreamGenerationMixin._sample, model)
        P = max(len(r) for r in rows)
        prompt_ids = torch.tensor([[PAD_ID] * (P - len(r)) + r for r in rows])
        attn_mask = prompt_ids.ne(PAD_ID)  # as eval.py: padding is wherever the pad id is
        blocks = st["gen_length"] // (st["block_length"] or st["gen_length"])
        state.update(nfe=0, masks=[], margins={}, full_forwards=0, prompt_len=P,
                     bound=st["gen_length"] + 2 * blocks + 4)
        kw = dict(attention_mask=attn_mask, max_new_tokens=st["gen_length"], output_history=False,
                  return_dict_in_generate=True, steps=st["steps"], temperature=st["temperature"], top_p=st["top_p"],
                  top_k=st["top_k"], alg=st["alg"], alg_temp=st["alg_temp"], threshold=st["threshold"] or 0.9,
                  dual_cache=st["dual_cache"])
        if st["block_length"] is not None:
            kw["block_length"] = st["block_length"]
        released = mod.sample_tokens
        mod.sample_tokens = traced_sample_tokens(released, case)
        try:
            out = model.diffusion_generate(prompt_ids, **kw).sequences
        except Exception as e:  # noqa: BLE001  (recorded: what Fast-dLLM does with this input)
            return {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip(),
                    "nfe": state["nfe"]}
        finally:
            mod.sample_tokens = released
        final = (out == MASK_ID).sum(1).tolist()
        counts = state["masks"] + [final]
        commits = [[counts[k][j] - counts[k + 1][j] for k in range(len(counts) - 1)] for j in range(len(rows))]
        return {"output_ids": out[:, P:].tolist(), "nfe": state["nfe"], "commits_per_step": commits,
                "margins": dict(state["margins"])}

    todo = json.loads(Path(todo_path).read_text())
    results = []
    for case in todo["cases"]:
        singles = []
        for ids in todo["prompts"]:
            r = decode(case, [ids])
            if "error" not in r:
                r = {"output_ids": r["output_ids"][0], "nfe": r["nfe"], "commits_per_step": r["commits_per_step"][0],
                     "margins": r["margins"]}
            singles.append(r)
        batched = [{"name": b["name"], **decode(case, [todo["prompts"][i] for i in b["prompts"]])}
                   for b in todo["batches"]]
        results.append({"name": case["name"], "rows": singles, "batches": batched})
    Path(out_path).write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                                          "results": results}))


# ----------------------------------------------------------------------------------------- this side
def build_checkpoint(folder: Path) -> Path:
    for sub in ("tests/helpers", "tests"):  # where the builder lives, after and before the tests were regrouped
        sys.path.insert(0, str(ROOT / sub))
    from arch_checkpoints import dream_arch_checkpoint

    return dream_arch_checkpoint(folder, **CHECKPOINT["size"])


def main() -> None:
    a = reference_parser(__doc__, "Fast-dLLM's dream/ folder (outside the repository)",
                         ("--python", "an interpreter with transformers 4.49.0"), FIXTURE).parse_args()
    ref = Path(a.ref).resolve()
    check_blobs(ref.parent, SOURCE["files"], f"{SOURCE['repository']}@{SOURCE['commit'][:7]}")
    todo = cases()
    bats = batches()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_checkpoint(Path(tmp) / "dream-arch-golden")
        out = run_worker(a.python, __file__, Path(tmp), [str(folder), str(ref)],
                         {"cases": todo, "prompts": PROMPTS, "batches": bats})
    check_ran_under(out["transformers"], SOURCE["transformers"])
    by_name = {r["name"]: r for r in out["results"]}
    fixture = {
        "about": "Token ids from Fast-dLLM's released Dream decoders (dream/model/generation_utils.py without cache, "
                 "generation_utils_block.py with prefix or dual cache) and its Dream modeling file, called as "
                 "dream/eval.py calls them, temperature 0, float64, on the checkpoint named in 'checkpoint'. "
                 "'rows': each prompt alone; 'batches': the same decoders on batches (output ids, or what Fast-dLLM "
                 "did instead). Made by analyses/make_fastdllm_dream_golden.py.",
        "source": SOURCE,
        "reference_torch": out["torch"],
        "checkpoint": CHECKPOINT,
        "ids": {"mask": MASK_ID, "pad": PAD_ID, "eos": 0},
        "call": "diffusion_generate(prompt_ids, attention_mask=prompt_ids.ne(pad), max_new_tokens=gen_length, "
                "output_history=False, return_dict_in_generate=True, steps=steps, temperature=0.0, top_p=None, "
                "top_k=None, alg=alg, alg_temp=0.0, threshold=threshold or 0.9, dual_cache=dual_cache"
                "[, block_length=block_length for generation_utils_block])",
        "prompts": {"texts": TEXTS, "prompt_ids": PROMPTS},
        "batches": [{**b, "prompt_ids": [PROMPTS[i] for i in b["prompts"]]} for b in bats],
        "cases": [{**c, "rows": by_name[c["name"]]["rows"], "batches": by_name[c["name"]]["batches"]} for c in todo],
    }
    for c in fixture["cases"]:  # the threshold fires: steps (forwards) that committed two or more tokens, all prompts
        c["multi_commit_steps"] = sum(n > 1 for r in c["rows"] for n in r.get("commits_per_step", []))
    write_fixture(a.out, fixture)
    summarize(fixture, a.out)


def summarize(fixture: dict, path) -> None:
    cs = fixture["cases"]
    rows = [r for c in cs for r in c["rows"]]
    print(f"wrote {path}: {len(cs)} cases x {len(fixture['prompts']['prompt_ids'])} prompts "
          f"({sum('output_ids' in r for r in rows)} decodes) + {len(fixture['batches'])} batches each")
    for c in cs:
        bs = "; ".join(f"{b['name']}: " + ("ok" if "output_ids" in b else b["error"][:60]) for b in c["batches"])
        nfe = [r.get("nfe") for r in c["rows"]]
        print(f"{c['name']:34s} nfe {nfe} steps committing 2+ {c['multi_commit_steps']:3d} | {bs}")
    for k in ("argmax_gap", "threshold_gap", "entropy_gap", "mask_prob_max", "mask_share_flips"):
        vals = [r["margins"][k] for r in rows if k in r.get("margins", {})]
        if vals:
            print(f"{k}: min {min(vals):.3g} max {max(vals):.3g}")


if __name__ == "__main__":
    worker_or_main(worker, main)
