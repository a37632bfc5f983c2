"""Make tests/fixtures/dream_golden.json: token ids from Dream's released `diffusion_generate`.

The reference is Dream's first published generation_utils.py (`DreamGenerationMixin`), NOT part of this
repository. Its public copy used here: siyue-zhang/DiffEmbed, commit 3a49bbc9, blob dream/generation_utils.py
(the script checks the blob hash). Dream documents transformers 4.46.2; the reference runs under it in a
separate folder, with this environment's torch, so the project's environment is left alone:

    mkdir -p /tmp/dream_ref && cd /tmp/dream_ref
    git clone https://github.com/siyue-zhang/DiffEmbed && git -C DiffEmbed show \\
        3a49bbc998579fa8c838fbb1fc39211fb6e8469a:dream/generation_utils.py > generation_utils.py
    pip install --target /tmp/dream_ref/site --no-deps transformers==4.46.2 "tokenizers>=0.20,<0.21" \\
        huggingface_hub==0.26.2
    python analyses/make_dream_golden.py --ref /tmp/dream_ref/generation_utils.py --site /tmp/dream_ref/site

The checkpoint is tests/helpers/dream_golden_checkpoint.py's (the test builds the same one): the project's Dream
stand-in with seeded weights. This script builds it here (transformers 5), then a subprocess under
transformers 4.46.2 loads it with `trust_remote_code=True`, mixes `DreamGenerationMixin` into its class
(as Dream's `DreamModel` does) and calls `diffusion_generate` with Dream's own defaults for everything a
case does not set: they come from `DreamGenerationConfig.from_model_config(model.config)`, which under 4.46
inherits top_k = 50 and top_p = 1.0 from `PretrainedConfig` (this config.json sets neither).

Batches. The released `_sample` counts masks over the whole batch and takes the top positions across rows,
so rows of a batch are coupled. The goldens follow the per-row reading: each row of a left-padded batch is
run alone, as a batch of one that keeps its left padding (so it goes through Dream's (B, 1, L, L) mask and
position ids). What the released code gives on the whole batch at once is stored beside it
(`first_release_batched`) for docs/adapters.md; the test does not compare against it.

Cases at temperature > 0, `alg_temp` > 0 or `alg="origin"` are single prompts seeded with
`torch.manual_seed(seed)` right before the call, as `mdlm_probe.generate` seeds each batch.
Only prompt ids, settings, output ids and provenance are written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from reference_runs import blob_of, check_ran_under, reference_parser, run_worker, worker_or_main, write_fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "dream_golden.json"
SOURCE = {"repository": "siyue-zhang/DiffEmbed", "commit": "3a49bbc998579fa8c838fbb1fc39211fb6e8469a",
          "path": "dream/generation_utils.py", "blob": "c972cb3d339e20f1dca76b94c141ba44beb9f8be",
          "transformers": "4.46.2"}

SINGLE = ["Ann has 10 pens."]
BATCH = ["Hi", "Ann has 10 pens. She buys 3.", "12+30="]  # unequal lengths: left padding
GRID = [(16, 16), (16, 6), (32, 32), (32, 12), (64, 64), (64, 24)]  # (gen length, steps)
ALGS = ["maskgit_plus", "topk_margin", "entropy"]


def cases() -> list[dict]:
    """name, prompts, settings (diffusion_generate's names; absent = Dream's default)."""
    out = []
    for alg in ALGS:
        for g, s in GRID:
            for kind, prompts in (("single", SINGLE), ("batch", BATCH)):
                out.append({"name": f"{alg}_g{g}_s{s}_{kind}", "prompts": prompts,
                            "settings": {"alg": alg, "max_new_tokens": g, "steps": s, "temperature": 0.0}})
    extra = [  # the filters and eps as options, and the random parts of Dream's sampler
        ("entropy_top_p", BATCH, dict(alg="entropy", max_new_tokens=16, steps=16, temperature=0.0, top_p=0.9)),
        ("maskgit_plus_no_top_k", BATCH, dict(alg="maskgit_plus", max_new_tokens=32, steps=12, temperature=0.0,
                                              top_k=None)),
        ("topk_margin_top_k3", SINGLE, dict(alg="topk_margin", max_new_tokens=16, steps=8, temperature=0.0, top_k=3)),
        ("entropy_eps", SINGLE, dict(alg="entropy", max_new_tokens=32, steps=32, temperature=0.0, eps=0.05)),
        ("maskgit_plus_t07", SINGLE, dict(alg="maskgit_plus", max_new_tokens=32, steps=16, temperature=0.7, seed=3)),
        ("entropy_t05_top_p", SINGLE, dict(alg="entropy", max_new_tokens=16, steps=8, temperature=0.5, top_p=0.95,
                                           seed=5)),
        ("topk_margin_alg_temp", SINGLE, dict(alg="topk_margin", max_new_tokens=16, steps=8, temperature=0.0,
                                              alg_temp=0.5, seed=4)),
        ("entropy_t1_alg_temp", SINGLE, dict(alg="entropy", max_new_tokens=32, steps=16, temperature=1.0,
                                             alg_temp=1.0, seed=6)),
        ("origin_t0", SINGLE, dict(alg="origin", max_new_tokens=16, steps=16, temperature=0.0, seed=9)),
        ("origin_t1", SINGLE, dict(alg="origin", max_new_tokens=32, steps=12, temperature=1.0, seed=7)),
    ]
    out += [{"name": n, "prompts": p, "settings": s} for n, p, s in extra]
    return out


# ----------------------------------------------------------------------------------------- reference side
def worker(ckpt: str, ref: str, cases_path: str, out_path: str) -> None:
    """Runs under transformers 4.46.2 (PYTHONPATH): Dream's diffusion_generate on every case."""
    import importlib.util

    import torch
    import transformers
    from transformers import AutoModel

    spec = importlib.util.spec_from_file_location("dream_generation_utils", ref)
    gu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gu)
    base = AutoModel.from_pretrained(ckpt, trust_remote_code=True).eval()
    base.__class__ = type("DreamRef", (gu.DreamGenerationMixin, type(base)), {})  # as DreamModel is built
    model = base
    pad = model.config.pad_token_id
    d = gu.DreamGenerationConfig.from_model_config(model.config)
    defaults = {k: getattr(d, k) for k in ("temperature", "top_p", "top_k", "eps", "steps", "alg", "alg_temp",
                                           "mask_token_id", "pad_token_id", "eos_token_id")}

    def run(rows, settings, P):
        """rows left-padded to P tokens -> the generated ids of each row."""
        ids = torch.tensor([[pad] * (P - len(r)) + r for r in rows])
        am = torch.tensor([[0] * (P - len(r)) + [1] * len(r) for r in rows])
        kw = {k: v for k, v in settings.items() if k != "seed"}
        torch.manual_seed(settings.get("seed", 0))
        x = model.diffusion_generate(ids, attention_mask=am, return_dict_in_generate=False, output_history=False,
                                     **kw)
        return x[:, P:].tolist()

    results = []
    for case in json.loads(Path(cases_path).read_text()):
        rows, st = case["prompt_ids"], case["settings"]
        P = max(len(r) for r in rows)
        # per row: each row alone, keeping the padding it has in the batch
        per_row = [run([r], st, P)[0] for r in rows]
        res = {"name": case["name"], "output_ids": per_row}
        if len(rows) > 1:
            res["first_release_batched"] = run(rows, st, P)
        results.append(res)
    Path(out_path).write_text(json.dumps({"defaults": defaults, "transformers": transformers.__version__,
                                          "torch": torch.__version__, "results": results}))


# ----------------------------------------------------------------------------------------- this side
def main() -> None:
    a = reference_parser(__doc__, "Dream's generation_utils.py (outside the repository)",
                         ("--site", "folder with transformers 4.46.2 (pip install --target)"), FIXTURE).parse_args()
    blob = blob_of(Path(a.ref))
    if blob != SOURCE["blob"]:
        sys.exit(f"{a.ref} is blob {blob}, not {SOURCE['blob']} ({SOURCE['repository']} {SOURCE['path']})")
    sys.path.insert(0, str(ROOT / "tests" / "helpers"))
    import dream_golden_checkpoint as ckpt  # tests/ helper: the checkpoint the test builds

    todo = cases()
    for c in todo:
        c["prompt_ids"] = [ckpt.encode(p) for p in c["prompts"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = ckpt.build(Path(tmp) / "tiny-dream-golden")
        ref = run_worker(sys.executable, __file__, Path(tmp), [str(folder), a.ref], todo,
                         {"PYTHONPATH": os.pathsep.join([a.site, str(Path(a.ref).parent)])})
    check_ran_under(ref["transformers"], SOURCE["transformers"])
    by_name = {r["name"]: r for r in ref["results"]}
    fixture = {
        "about": "Token ids from Dream's released diffusion_generate (DreamGenerationMixin._sample) on the "
                 "checkpoint tests/helpers/dream_golden_checkpoint.py builds; per-row reading for batches (each row "
                 "run alone with its left padding). Made by analyses/make_dream_golden.py.",
        "source": SOURCE,
        "reference_torch": ref["torch"],
        "released_defaults": ref["defaults"],
        "cases": [{"name": c["name"], "prompt_ids": c["prompt_ids"], "settings": c["settings"],
                   **{k: v for k, v in by_name[c["name"]].items() if k != "name"}} for c in todo],
    }
    write_fixture(a.out, fixture)
    coupled = [(c["name"], j) for c in fixture["cases"] if "first_release_batched" in c
               for j, (x, y) in enumerate(zip(c["output_ids"], c["first_release_batched"])) if x != y]
    n_rows = sum(len(c["output_ids"]) for c in fixture["cases"] if "first_release_batched" in c)
    print(f"wrote {a.out}: {len(todo)} cases; defaults {ref['defaults']}")
    print(f"batched first release differs from the per-row reading in {len(coupled)} of {n_rows} rows")


if __name__ == "__main__":
    worker_or_main(worker, main)
