"""Make tests/fixtures/llada_golden.json: token ids produced by LLaDA's reference `generate()`.

The reference code is NOT part of this repository. Fetch ML-GSAI/LLaDA's generate.py yourself, save it
outside the checkout, change its two hard-coded ids (EOS 126081, EoT 126348) to module-level names
`EOS_ID` / `EOT_ID` (this script sets them), and run:

    nice -n 19 python analyses/make_golden.py --ref /tmp/llada_ref/generate.py

The reference runs on the shipped `tiny-random` checkpoint in float64, through a thin view of our adapter
(it expects `.device` and `model(x, attention_mask=...).logits`), so the golden ids test the sampling
loop, not the model. Each batch is seeded with `torch.manual_seed(seed)` right before the call, as
`mdlm_probe.generate` does. Only prompts, settings and output ids are written.

`--check` compares our sampler with the fixture (and prints, per flag, whether the flag changed the
reference's output: a flag that changes nothing would make its case a weak test).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import torch

from reference_runs import write_fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "llada_golden.json"
EOT_CHAR = "k"  # stands in for LLaDA's <|eot_id|>: the tiny-random model's most frequent greedy token

PROMPTS = ["Ann has 10 pens.", "Bob ate 3 pears.", "What is 17 * 18?"]  # equal lengths: no padding, no mask
PADDED = ["x", "Ann has 10 pens. She buys 3.", "12+30="]  # unequal lengths: left padding + attention mask

# name -> (prompts, settings). Settings use SamplerConfig's names; batch = all prompts of the case.
CASES: dict[str, tuple[list[str], dict]] = {
    "t0_one_block": (PROMPTS, dict(gen_length=16, steps=16, block_length=16)),
    "t0_blocks": (PROMPTS, dict(gen_length=16, steps=16, block_length=4)),
    "t0_few_steps": (PROMPTS, dict(gen_length=16, steps=6, block_length=8)),  # 3 steps per block: 3,3,2 tokens
    "t0_cfg": (PROMPTS, dict(gen_length=12, steps=6, block_length=6, cfg_scale=1.5)),
    "random_remask": (PROMPTS, dict(gen_length=16, steps=8, block_length=8, remasking="random", seed=7)),
    "t1_seed": (PROMPTS, dict(gen_length=16, steps=8, block_length=8, temperature=1.0, seed=3)),
    "t07_random_blocks": (PROMPTS, dict(gen_length=16, steps=8, block_length=4, temperature=0.7,
                                        remasking="random", seed=11)),
    "t1_logits_eos_inf": (PROMPTS, dict(gen_length=16, steps=8, block_length=8, temperature=1.0, seed=3,
                                        logits_eos_inf=True)),
    "t0_conf_eos_eot_inf": (PROMPTS, dict(gen_length=16, steps=16, block_length=8, confidence_eos_eot_inf=True)),
    # T > 0: only EoT reaches the softmax; a low temperature makes EoT ('k') a frequent proposal, so it matters
    "t03_conf_eos_eot_inf": (PROMPTS, dict(gen_length=16, steps=8, block_length=8, temperature=0.3, seed=3,
                                           confidence_eos_eot_inf=True)),
    "padded_t0": (PADDED, dict(gen_length=16, steps=8, block_length=8)),
    "padded_t0_blocks_cfg": (PADDED, dict(gen_length=12, steps=6, block_length=4, cfg_scale=0.5)),
    "padded_t1_seed": (PADDED, dict(gen_length=16, steps=16, block_length=8, temperature=1.0, seed=5)),
}
REF_KEYS = ("steps", "gen_length", "block_length", "temperature", "cfg_scale", "remasking", "logits_eos_inf",
            "confidence_eos_eot_inf")
DEFAULTS = dict(temperature=0.0, cfg_scale=0.0, remasking="low_confidence", seed=0, logits_eos_inf=False,
                confidence_eos_eot_inf=False)


def load_tiny():
    from mdlm_probe import load_model

    m = load_model("tiny-random", dtype="float64")
    m.eot_id = m.tokenizer.convert_tokens_to_ids(EOT_CHAR)
    return m


class RefView:
    """What the reference expects of a Hugging Face model: `.device` and `model(x, attention_mask).logits`."""

    def __init__(self, model):
        self.model, self.device = model, model.device

    def __call__(self, x, attention_mask=None):
        return SimpleNamespace(logits=self.model(x, attention_mask=attention_mask))


def left_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    P = max(map(len, rows))
    ids = torch.tensor([[pad] * (P - len(r)) + r for r in rows])
    am = torch.tensor([[0] * (P - len(r)) + [1] * len(r) for r in rows])
    return ids, am


def run_reference(ref, model, prompts: list[str], settings: dict) -> list[list[int]]:
    view = RefView(model)
    rows = [model.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    ids, am = left_pad(rows, model.pad_id)
    s = {**DEFAULTS, **settings}
    torch.manual_seed(s["seed"])
    kwargs = {k: s[k] for k in REF_KEYS}
    x = ref.generate(view, ids, attention_mask=am if bool((am == 0).any()) else None, mask_id=model.mask_id, **kwargs)
    return x[:, ids.shape[1]:].tolist()


def run_ours(model, prompts: list[str], settings: dict) -> list[list[int]]:
    from mdlm_probe import SamplerConfig, generate

    cfg = SamplerConfig(**{**DEFAULTS, **settings, "batch_size": len(prompts)})
    return [r["output_ids"] for r in generate(model, prompts, cfg)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, help="path to the (patched) reference generate.py, outside this repo")
    ap.add_argument("--out", type=Path, default=FIXTURE)
    ap.add_argument("--check", action="store_true", help="compare our sampler with the fixture")
    args = ap.parse_args()
    model = load_tiny()
    if args.check:
        gold = json.loads(args.out.read_text())
        for case in gold["cases"]:
            same = run_ours(model, case["prompts"], case["settings"]) == case["output_ids"]
            print(f"{case['name']:24s} {'match' if same else 'DIFFERS'}")
        return
    if args.ref is None:
        ap.error("--ref is required to make the fixture")
    spec = importlib.util.spec_from_file_location("llada_reference", args.ref)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    if not hasattr(ref, "EOS_ID") or not hasattr(ref, "EOT_ID"):
        raise SystemExit(f"{args.ref}: replace the hard-coded EOS/EoT ids by EOS_ID / EOT_ID first")
    ref.EOS_ID, ref.EOT_ID = model.eos_id, model.eot_id
    from mdlm_probe.core.checkpoints import checkpoint_hash

    cases = []
    for name, (prompts, settings) in CASES.items():
        out = run_reference(ref, model, prompts, settings)
        flag = [k for k in ("logits_eos_inf", "confidence_eos_eot_inf", "cfg_scale") if settings.get(k)]
        note = ""
        if flag:  # does the flag matter on this model? (else the case tests nothing about it)
            base = run_reference(ref, model, prompts, {k: v for k, v in settings.items() if k not in flag})
            note = f"  ({flag[0]} changes the output: {base != out})"
        padded = len({len(model.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts}) > 1
        print(f"{name:24s} {'padded ' if padded else ''}{out[0]}{note}")
        cases.append({"name": name, "prompts": prompts, "settings": settings, "output_ids": out})
    gold = {
        "about": "Token ids from LLaDA's reference generate() (ML-GSAI/LLaDA generate.py, current upstream "
                 "version with attention_mask/logits_eos_inf/confidence_eos_eot_inf; EOS/EoT ids patched to "
                 "the ids below), run on tiny-random in float64. Made by analyses/make_golden.py.",
        "ckpt": "tiny-random",
        "ckpt_hash": checkpoint_hash(model.path),
        "dtype": "float64",
        "eos_id": model.eos_id,
        "eot_id": model.eot_id,
        "defaults": DEFAULTS,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_fixture(args.out, gold)
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
