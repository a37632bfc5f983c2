"""Make tests/fixtures/fastdllm_golden.json: token ids from Fast-dLLM's released LLaDA decoders.

The reference is NVlabs/Fast-dLLM at commit 24cc59e75f20a6384bae8c905965bb090b96388e, folder llada/
(`generate.py`: `generate`, `generate_with_prefix_cache`, `generate_with_dual_cache`; `model/`: its LLaDA
modeling file with `past_key_values` and `replace_position`). None of it is in this repository. Fast-dLLM pins
transformers 4.49.0, so it runs in a separate virtual environment that borrows this one's torch:

    git clone https://github.com/NVlabs/Fast-dLLM /tmp/fastdllm && git -C /tmp/fastdllm checkout 24cc59e75f20
    python -m venv --system-site-packages /tmp/fastdllm-venv
    /tmp/fastdllm-venv/bin/pip install transformers==4.49.0 einops
    python analyses/make_fastdllm_golden.py --ref /tmp/fastdllm/llada --python /tmp/fastdllm-venv/bin/python

(the script checks the git blob hashes of the three reference files). This side (transformers 5) builds the
checkpoint the test builds (`tests/decoding/test_fastdllm_golden.py::build_checkpoint`: the project's LLaDA-architecture
builder, float64, with the output row of [MASK] zeroed and the output layer scaled so that proposals are
confident enough for the 0.9 threshold to fire). The worker, under the other interpreter, copies it to a scratch
folder whose config points at Fast-dLLM's modeling file instead of the project's, loads it with
`AutoModel.from_pretrained(..., trust_remote_code=True, torch_dtype=float64)` and runs each released decoder on
each prompt alone (Fast-dLLM builds its canvas with batch 1 and passes no attention mask to attention, so
batches and padding are not supported there). Temperature 0, `low_confidence`.

The worker traces Fast-dLLM's `get_transfer_index` to record, per step, how many tokens it committed, and the
margins the comparison relies on: the smallest top-1 minus top-2 logit gap among masked positions, the smallest
|confidence - threshold|, with the confidence also taken as our threshold mode computes it (without [MASK]'s
probability, since [MASK] is never proposed there), and the smallest gap between the last committed and the
first left-out confidence of a step-plan step. It refuses a run where [MASK] would be proposed. Only prompts,
settings, output ids, NFE, commits per step, margins and provenance are written.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from reference_runs import check_blobs, check_ran_under, reference_parser, run_worker, worker_or_main, write_fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "fastdllm_golden.json"
SOURCE = {"repository": "NVlabs/Fast-dLLM", "commit": "24cc59e75f20a6384bae8c905965bb090b96388e",
          "files": {"llada/generate.py": "02e4e7c92c6200cfd4c7b693602f16f7624cf958",  # git blob hashes
                    "llada/model/modeling_llada.py": "95d4aa6243d3e4c44c044d128ac0cf6761fe4ce7",
                    "llada/model/configuration_llada.py": "465158bc60e9be3e64e364dd02a1027467fd1742"},
          "transformers": "4.49.0"}
FUNCTIONS = {"none": "generate", "prefix": "generate_with_prefix_cache", "dual": "generate_with_dual_cache"}
GRID = [(32, 8, 16), (24, 8, 24), (32, 16, 8)]  # (gen length, block length, steps): 2, 1 and 4 tokens per step
THRESHOLDS = [None, 0.9]


def cases(prompts: list[list[int]]) -> list[dict]:
    return [{"name": f"{cache}_g{g}_b{b}_s{s}" + (f"_t{t}" if t else ""), "function": FUNCTIONS[cache],
             "settings": {"cache": cache, "gen_length": g, "block_length": b, "steps": s, "threshold": t,
                          "temperature": 0.0, "remasking": "low_confidence"}, "prompt_ids": prompts}
            for cache in FUNCTIONS for g, b, s in GRID for t in THRESHOLDS]


# ----------------------------------------------------------------------------------------- reference side
def worker(ckpt: str, ref: str, cases_path: str, out_path: str) -> None:
    """Runs under transformers 4.49.0: Fast-dLLM's decoders on every case, one prompt at a time."""
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import AutoModel

    sys.path.insert(0, ref)  # generate.py imports `model.modeling_llada`
    import generate as G

    scratch = Path(tempfile.mkdtemp()) / "ckpt"
    shutil.copytree(ckpt, scratch)
    for f in ("modeling_llada.py", "configuration_llada.py"):
        shutil.copy(Path(ref) / "model" / f, scratch / f)
    config = json.loads((scratch / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"}
    (scratch / "config.json").write_text(json.dumps(config))
    model, info = AutoModel.from_pretrained(scratch, trust_remote_code=True, torch_dtype=torch.float64,
                                            output_loading_info=True)
    assert type(model).__module__.endswith("modeling_llada"), type(model)
    bad = {k: v for k, v in info.items() if v}
    assert not bad, f"weights do not load cleanly into Fast-dLLM's modeling file: {bad}"
    model.eval()
    mask_id = config["mask_token_id"]

    trace: list[dict] = []
    released = G.get_transfer_index

    def traced(logits, temperature, remasking, mask_index, x, num_transfer_tokens, threshold=None):
        x0, transfer = released(logits, temperature, remasking, mask_index, x, num_transfer_tokens, threshold)
        lg = logits.double()[mask_index]  # (N, V) the masked positions of the current block
        step = {"commits": int(transfer.sum())}
        if lg.numel():
            top2 = lg.topk(2, dim=-1).values
            p = F.softmax(lg, dim=-1)
            best = p.max(-1).values
            assert not bool((lg.argmax(-1) == mask_id).any()), "[MASK] would be proposed"
            step["argmax_gap"] = float((top2[:, 0] - top2[:, 1]).min())
            if threshold is not None:
                ours = best / (1 - p[:, mask_id])  # our threshold mode: [MASK] is never proposed
                assert bool(((best >= threshold) == (ours >= threshold)).all()), "[MASK]'s share flips a decision"
                step["threshold_gap"] = float(torch.minimum((best - threshold).abs(), (ours - threshold).abs()).min())
            else:
                k = int(num_transfer_tokens[0])
                if k < best.numel():
                    s = best.sort(descending=True).values
                    step["topk_gap"] = float(s[k - 1] - s[k])
        trace.append(step)
        return x0, transfer

    G.get_transfer_index = traced
    results = []
    for case in json.loads(Path(cases_path).read_text()):
        st, fn = case["settings"], getattr(G, case["function"])
        rows = []
        for ids in case["prompt_ids"]:
            trace.clear()
            x, nfe = fn(model, torch.tensor([ids]), steps=st["steps"], gen_length=st["gen_length"],
                        block_length=st["block_length"], temperature=0.0, remasking="low_confidence",
                        mask_id=mask_id, threshold=st["threshold"])
            rows.append({"output_ids": x[0, len(ids):].tolist(), "nfe": int(nfe),
                         "commits_per_step": [t["commits"] for t in trace],
                         "margins": {k: min((t[k] for t in trace if k in t), default=None)
                                     for k in ("argmax_gap", "threshold_gap", "topk_gap")}})
        results.append({"name": case["name"], "rows": rows})
    Path(out_path).write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                                          "results": results}))


# ----------------------------------------------------------------------------------------- this side
def main() -> None:
    a = reference_parser(__doc__, "Fast-dLLM's llada/ folder (outside the repository)",
                         ("--python", "an interpreter with transformers 4.49.0 and einops"), FIXTURE).parse_args()
    ref = Path(a.ref).resolve()
    check_blobs(ref.parent, SOURCE["files"], f"{SOURCE['repository']}@{SOURCE['commit'][:7]}")
    sys.path[:0] = [str(ROOT / "tests" / "decoding"), str(ROOT / "tests" / "helpers")]
    import test_fastdllm_golden as golden  # the checkpoint and prompts the test uses

    todo = cases(golden.PROMPTS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = golden.build_checkpoint(Path(tmp) / "llada-arch-golden")
        out = run_worker(a.python, __file__, Path(tmp), [str(folder), str(ref)], todo)
    check_ran_under(out["transformers"], SOURCE["transformers"])
    by_name = {r["name"]: r["rows"] for r in out["results"]}
    fixture = {
        "about": "Token ids from Fast-dLLM's released LLaDA decoders (llada/generate.py with its modeling file), "
                 "temperature 0, each prompt alone, float64, on the checkpoint "
                 "tests/decoding/test_fastdllm_golden.py::build_checkpoint builds. Made by analyses/make_fastdllm_golden.py.",
        "source": SOURCE,
        "reference_torch": out["torch"],
        "checkpoint": golden.CHECKPOINT,
        "cases": [{**c, "rows": by_name[c["name"]]} for c in todo],
    }
    write_fixture(a.out, fixture)
    rows = [r for c in fixture["cases"] for r in c["rows"]]
    fired = [r for c in fixture["cases"] if c["settings"]["threshold"] for r in c["rows"]]
    steps = [n for r in fired for n in r["commits_per_step"] if n]
    print(f"wrote {a.out}: {len(todo)} cases x {len(golden.PROMPTS)} prompts")
    print(f"threshold steps committing 2+ tokens: {sum(n > 1 for n in steps)} of {len(steps)} "
          f"(commits per step {min(steps)}..{max(steps)}, mean {sum(steps) / len(steps):.2f})")
    for k in ("argmax_gap", "threshold_gap", "topk_gap"):
        vals = [r["margins"][k] for r in rows if r["margins"][k] is not None]
        print(f"smallest {k}: {min(vals):.3g}")


if __name__ == "__main__":
    worker_or_main(worker, main)
