"""Text in, records out: prompts encoded and left-padded into batches, each decoded by `loop.diffuse`."""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import decoded_records

from .config import SamplerConfig
from .loop import diffuse
from .state import StepHook, StepState


def encode_prompts(model, prompts: Sequence[str], chat: bool = False) -> list[list[int]]:
    """Prompt texts -> token ids (with the chat template when asked and available)."""
    tok = model.tokenizer
    out = []
    for p in prompts:
        if chat and getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
            out.append(tok(text, add_special_tokens=False)["input_ids"])
        else:
            out.append(tok(p, add_special_tokens=False)["input_ids"])
    return out


def pad_left(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists -> ids (B, P), attention mask (B, P)."""
    P = max(len(s) for s in batch)
    ids = torch.full((len(batch), P), pad_id, dtype=torch.long)
    am = torch.zeros((len(batch), P), dtype=torch.long)
    for i, s in enumerate(batch):
        if s:
            ids[i, P - len(s):] = torch.tensor(list(s), dtype=torch.long)
            am[i, P - len(s):] = 1
    return ids, am


def generate(model, prompts: Sequence[str] | Sequence[Sequence[int]], cfg: SamplerConfig | None = None,
             hooks: Sequence[StepHook] = (), chat: bool = False, sample_ids: Sequence[str] | None = None,
             state: StepState | None = None) -> list[dict[str, Any]]:
    """Generate for prompts (texts or token id lists), in batches of `cfg.batch_size`.

    Returns one partial sample record per prompt (`records.decoded_records`, docs/conventions.md): prompt,
    prompt_ids, output_ids, raw_text, text_surface, text_ctc, text, trajectory, nfe, seconds, sampler. Each
    batch is seeded with `cfg.seed`, so a prompt's output at T > 0 depends on the batch it was decoded in.
    `state` continues a fork (`diffuse`'s; prompts that fit one batch). A batch a hook halted (`forks.TakeForks`
    with `halt=True`) is not finished and gives no records.
    """
    cfg = (cfg or SamplerConfig()).validate()
    if prompts and isinstance(prompts[0], str):
        ids_list = encode_prompts(model, prompts, chat=chat)
        texts = list(prompts)
    else:
        ids_list = [list(map(int, p)) for p in prompts]
        texts = [model.tokenizer.decode(p) for p in ids_list]
    sample_ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(len(ids_list))]
    pad = model.pad_id if model.pad_id is not None else (model.eos_id if model.eos_id is not None else 0)
    if state is not None and len(ids_list) > cfg.batch_size:
        raise ValueError("resuming a fork works on one batch at a time")
    records = []
    for s in range(0, len(ids_list), cfg.batch_size):
        chunk, batch = ids_list[s: s + cfg.batch_size], slice(s, s + cfg.batch_size)
        if max(len(c) for c in chunk) + cfg.gen_length > model.max_length:
            raise BadInput(f"prompt ({max(len(c) for c in chunk)} tokens) + gen-length {cfg.gen_length} exceed "
                           f"the model's max length {model.max_length}")
        ids, am = pad_left(chunk, pad)
        # The attention mask is passed only when padding exists: the reference gets none for equal lengths.
        am_arg = am if bool((am == 0).any()) else None
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()
        run_state = state.resumed(sample_ids[batch]) if state is not None else None
        out = diffuse(model, ids, am_arg, cfg, hooks=hooks, sample_ids=sample_ids[batch], state=run_state)
        if out.halted:
            continue
        secs = (time.perf_counter() - t0) / len(chunk)
        records += decoded_records(model, texts[batch], chunk, out, cfg, sample_ids[batch], secs)
    return records
