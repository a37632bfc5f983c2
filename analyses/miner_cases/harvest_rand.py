import json, sys
from mdlm_probe.adapters import load_model
from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.runs.evaluate import build_records
from mdlm_probe.decoding import SamplerConfig
model = load_model(sys.argv[1]); bench = get_benchmark("synthetic")
cfg = SamplerConfig(gen_length=32, steps=32, block_length=32, batch_size=32, temperature=float(sys.argv[3]))
recs = build_records(model, bench, bench.load()[:int(sys.argv[4]) if len(sys.argv) > 4 else 32], cfg, ckpt_name=model.sidecar["name"])
with open(sys.argv[2], "w") as fh:
    for r in recs:
        r["harvest"] = model.sidecar["name"] + f" T={sys.argv[3]}"
        fh.write(json.dumps(r) + "\n")
