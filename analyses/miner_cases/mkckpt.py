"""Copy a training state's weights (default runs/train/tiny-ce/last.pt) into a loadable checkpoint folder.

    python analyses/miner_cases/mkckpt.py OUT_DIR [STATE.pt]
"""
import json, sys
from pathlib import Path
import torch
from mdlm_probe.adapters.tiny_model import TinyConfig, build_tiny_model
from mdlm_probe.adapters.tokenizer import build_char_tokenizer
out = Path(sys.argv[1])
state = torch.load(sys.argv[2] if len(sys.argv) > 2 else "runs/train/tiny-ce/last.pt", map_location="cpu", weights_only=False)
sd = state["model"]
print("step", state["step"], {k: tuple(v.shape) for k, v in list(sd.items())[:6]})
mlp = [v.shape for k, v in sd.items() if "up_proj" in k][0]
tok = build_char_tokenizer()
m = build_tiny_model(len(tok), tok.pad_token_id, tok.eos_token_id, TinyConfig(n_layer=4, n_embd=128, n_head=4, mlp_mult=mlp[0] // 128))
m.load_state_dict(sd)
out.mkdir(parents=True, exist_ok=True)
m.save_pretrained(out, safe_serialization=True); tok.save_pretrained(out)
side = json.loads(Path("mdlm_probe/checkpoints/tiny-random/mdlm_probe.json").read_text())
side.update(name=f"tiny-ce@step{state['step']}", init="tiny", steps=state["step"], data="synthetic")
side["sampler"].update(gen_length=48, steps=48, block_length=48)
(out / "mdlm_probe.json").write_text(json.dumps(side, indent=2))
print(out, side["name"])
