"""Decode held-out synthetic problems with a checkpoint (plain, and with shift-like edits) for miner cases.

    python analyses/miner_cases/harvest.py CKPT N OUT.jsonl [VARIANTS]

VARIANTS: comma-separated of plain, ctc (collapse maps), insert, delete (a mask inserted / a position
deleted once half the canvas is committed); default all four. build.py's real rows came from this on
partly trained tiny-ce checkpoints (mkckpt.py), and `insert,delete` on step 1600 for the `sh:` rows.
"""
import json, sys
import torch
from mdlm_probe.adapters import load_model
from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.runs.evaluate import build_records
from mdlm_probe.decoding import SamplerConfig

ckpt, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
variants = sys.argv[4].split(",") if len(sys.argv) > 4 else ["plain", "ctc", "insert", "delete"]
model = load_model(ckpt)
name = model.sidecar["name"]
bench = get_benchmark("synthetic")
samples = bench.load()[:n]
cfg = SamplerConfig(gen_length=48, steps=48, block_length=48, batch_size=32)

def shift_hook(mode, at_frac=0.5, pos_frac=0.35):
    done = set()
    def hook(st):
        frac = st.committed_fraction()
        for j in range(st.x.shape[0]):
            if j in done or float(frac[j]) < at_frac:
                continue
            done.add(j)
            P, G = st.prompt_len, st.gen_length
            resp = st.x[j, P:].clone()
            k = int(pos_frac * G)
            if mode == "insert":  # a mask at k, everything after moves right by one
                new = torch.cat([resp[:k], resp.new_tensor([st.mask_id]), resp[k:-1]])
            else:  # drop position k, everything after moves left, a mask at the end
                new = torch.cat([resp[:k], resp[k + 1:], resp.new_tensor([st.mask_id])])
            st.x[j, P:] = new
            st.info.setdefault("shift", {})[st.sample_ids[j]] = {"mode": mode, "at_step": st.step, "pos": k}
    return hook

with open(out, "w") as fh:
    for tag, hooks, collapse in [("plain", (), "surface"), ("ctc", (), "ctc"),
                                  ("insert", (shift_hook("insert"),), "surface"),
                                  ("delete", (shift_hook("delete"),), "surface")]:
        if tag not in variants:
            continue
        c = SamplerConfig(**{**cfg.to_dict(), "collapse": collapse})
        recs = build_records(model, bench, samples, c, ckpt_name=name, hooks=hooks,
                             id_suffix="" if tag in ("plain", "ctc") else f"@{tag}")
        for r in recs:
            r["harvest"] = f"{name} {tag}"
            fh.write(json.dumps(r) + "\n")
        acc = sum(bool(r["correct"]) for r in recs) / len(recs)
        print(tag, "acc", acc, flush=True)
