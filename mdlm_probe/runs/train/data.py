"""Training data: prompt/response pairs (synthetic task or JSONL), encoded, and one seeded global batch per step."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from mdlm_probe.core.cards import short_sha256
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import iter_jsonl
from mdlm_probe.tasks import synthetic
from mdlm_probe.tasks.objectives import ce_canvas, slack_canvas
from .config import TrainConfig


Pair = tuple[Any, str]  # (prompt: str, or the chat messages before the response; response text)


def load_pairs(data: str, chat: bool = False) -> list[Pair] | None:
    """(prompt, response) pairs of a data file or gsm8k; None means the synthetic stream.

    Records: `messages` (a chat: the last assistant turn is the response, the turns before it the prompt),
    `prompt`/`response`, or `question`/`answer`."""
    if data == "synthetic":
        return None
    if data == "gsm8k":
        from datasets import load_dataset  # Hub; needs network (optional dependency)

        rows = [{"question": r["question"], "answer": r["answer"]} for r in load_dataset("openai/gsm8k", "main")["train"]]
    else:
        path = Path(data)
        if not path.is_file():
            raise BadInput(f"no data file {data!r} (expected synthetic, gsm8k or a .jsonl file)")
        rows = [obj for _, obj in iter_jsonl(path, "data file")]
    pairs: list[Pair] = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise BadInput(f"{data}: record {n} is not a JSON object")
        if "messages" in r:
            pairs.append(_chat_pair(r["messages"], f"{data}: record {n}", chat))
            continue
        q = r.get("question", r.get("prompt"))
        a = r.get("answer", r.get("response"))
        if not isinstance(q, str) or not q or not isinstance(a, str) or not a:
            raise BadInput(f"{data}: record {n} has no messages, question/prompt or answer/response")
        pairs.append((q if chat else synthetic.format_prompt(q), a))
    if not pairs:
        raise BadInput(f"{data}: no training examples")
    return pairs


def _chat_pair(messages: Any, where: str, chat: bool) -> Pair:
    if not chat:
        raise BadInput(f"{where}: messages records are rendered with the chat template; pass --chat")
    ok = isinstance(messages, list) and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                            and isinstance(m.get("content"), str) for m in messages)
    if not ok:
        raise BadInput(f"{where}: messages must be a list of {{role, content}} objects")
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        raise BadInput(f"{where}: messages need an assistant turn after at least one other turn")
    return [dict(role=m["role"], content=m["content"]) for m in messages[:last]], messages[last]["content"]


def data_hash(data: str) -> str:
    """sha256 (16 hex digits) of a data file, or the data's name."""
    p = Path(data)
    if not p.is_file():
        return data
    return "sha256:" + short_sha256(p.read_bytes())


Example = tuple[list[int], list[int]]  # (prompt ids, target ids = response + EOS)


def encode_prompt(model, prompt: Any, chat: bool) -> list[int]:
    tok = model.tokenizer
    if chat:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tok(text, add_special_tokens=False)["input_ids"]
    return tok(prompt, add_special_tokens=False)["input_ids"]


def check_chat(model, cfg: TrainConfig) -> None:
    if cfg.chat and not getattr(model.tokenizer, "chat_template", None):
        raise BadInput(f"--chat: the tokenizer of {cfg.init} has no chat template")


def encode_pairs(model, cfg: TrainConfig, pairs: list[Pair]) -> tuple[list[Example], dict[str, int]]:
    """Token ids of every pair, checked against the canvas: a prompt that leaves no room for a response is bad
    input; a response past the room left is cut (counted); with a fixed --response-length, longer ones are
    left out (counted)."""
    check_chat(model, cfg)
    max_len = cfg.max_length or model.max_length
    out, cut, dropped = [], 0, 0
    for n, (prompt, response) in enumerate(pairs, 1):
        p = encode_prompt(model, prompt, cfg.chat)
        t = model.tokenizer(response, add_special_tokens=False)["input_ids"] + [model.eos_id]
        if len(p) >= max_len:
            raise BadInput(f"max-length {max_len} is shorter than prompt {n} of {cfg.data} ({len(p)} tokens "
                           f"+ at least one response token)")
        if cfg.response_length is not None and len(t) > cfg.response_length:
            dropped += 1
            continue
        if len(p) + len(t) > max_len:
            t, cut = t[: max_len - len(p)], cut + 1
        out.append((p, t))
    if not out:
        raise BadInput(f"{cfg.data}: no response fits --response-length {cfg.response_length}")
    return out, {"examples": len(out), "responses_cut": cut, "responses_left_out": dropped}


def make_batch(model, cfg: TrainConfig, step: int, examples: list[Example] | None) -> dict[str, Any]:
    """The global batch of `step`, seeded by (seed, step), so a resumed run sees exactly the batches it would
    have, and so does every process (each takes its slice). Prompts are left-padded to the longest (P); the
    response canvas (R) starts at P for every row: the fixed --response-length, or the batch's longest target
    within max-length; CE pads each target with EOS to R (LLaDA's SFT), CTC+CE with `<slack>`."""
    rng = random.Random(cfg.seed * 1_000_003 + step)
    tok = model.tokenizer
    prompts, targets = [], []
    while len(prompts) < cfg.batch_size:
        if examples is None:
            p = synthetic.sample_train(rng)
            t = tok(p.solution, add_special_tokens=False)["input_ids"] + [model.eos_id]
            if len(t) > cfg.response_length:
                continue  # too long for the canvas
            q = p.question if cfg.chat else synthetic.format_prompt(p.question)
            prompts.append(encode_prompt(model, q, cfg.chat))
            targets.append(t)
        else:
            p, t = examples[rng.randrange(len(examples))]
            prompts.append(p)
            targets.append(t)
    P = max(map(len, prompts))
    R = cfg.response_length or min(max(map(len, targets)), (cfg.max_length or model.max_length) - P)
    targets = [t[:R] for t in targets]  # a long prompt and a long response from different rows (rare)
    B, L = cfg.batch_size, P + R
    pad = model.pad_id if model.pad_id is not None else model.eos_id
    canvas = torch.full((B, L), pad, dtype=torch.long)
    attn = torch.zeros((B, L), dtype=torch.long)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        canvas[i, P - len(p):P] = torch.tensor(p)
        attn[i, P - len(p):] = 1
        if cfg.objective == "ce":
            resp = ce_canvas(t, R, model.eos_id)
        else:
            resp = slack_canvas(t, R, model.slack_id, cfg.collapse, rng, cfg.slack_gaps)
        canvas[i, P:] = torch.tensor(resp)
    response = torch.zeros((B, L), dtype=torch.bool)
    response[:, P:] = True
    U = max(map(len, targets))
    tgt = torch.zeros((B, U), dtype=torch.long)
    for i, t in enumerate(targets):
        tgt[i, : len(t)] = torch.tensor(t)
    return {"canvas": canvas, "attn": attn, "response": response, "P": P, "R": R, "targets": tgt,
            "target_lengths": torch.tensor([len(t) for t in targets])}
