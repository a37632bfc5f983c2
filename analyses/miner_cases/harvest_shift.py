"""Decode held-out synthetic problems with the partly trained tiny-ce (plain, and with shift-like edits)."""
import json, sys
import torch
from mdlm_probe.adapters import load_model
from mdlm_probe.benchmarks import get_benchmark
from mdlm_probe.evaluate import build_records
from mdlm_probe.sampler import SamplerConfig

ckpt, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
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
    for tag, hooks, collapse in [
                                  ("insert", (shift_hook("insert"),), "surface"),
                                  ("delete", (shift_hook("delete"),), "surface")]:
        c = SamplerConfig(**{**cfg.to_dict(), "collapse": collapse})
        recs = build_records(model, bench, samples, c, ckpt_name=name, hooks=hooks,
                             id_suffix="" if tag in ("plain", "ctc") else f"@{tag}")
        for r in recs:
            r["harvest"] = f"{name} {tag}"
            fh.write(json.dumps(r) + "\n")
        acc = sum(bool(r["correct"]) for r in recs) / len(recs)
        print(tag, "acc", acc, flush=True)
