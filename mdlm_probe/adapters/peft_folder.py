"""A peft (LoRA) adapter folder as a checkpoint: its base checkpoint, loaded like any --ckpt, plus the adapter.

`mdlm-probe train --lora` writes such a folder (adapter_config.json, adapter weights, the tokenizer with
`<slack>` when it added one, and the `mdlm_probe.json` sidecar naming `base_checkpoint`). Loading it:
1. the base through its own adapter (`load_model(base)`: sidecar, remote code, checks);
2. `<slack>` added again when the adapter has one and the base has none (`add_slack_token`: the same
   deterministic rows training started from), so the embedding sizes match the adapter's;
3. the folder's tokenizer, when saved there (it carries `<slack>`);
4. the adapter through peft, merged into the weights (`merge_and_unload`), so every sampler, cache and hook
   sees the family's plain module: base + adapter decodes as the merged checkpoint `--merge` writes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mdlm_probe.core.checkpoints import adapter_base
from mdlm_probe.core.exceptions import BadInput, first_line
from .base import MaskedDiffusionModel, load_model
from .slack_token import SLACK_TOKEN, add_slack_token

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def load_adapter_folder(folder: Path, sidecar: dict | None, adapter: str | None = None, device=None, dtype=None,
                        allow_missing_weights: bool = False) -> MaskedDiffusionModel:
    """Base + adapter of `folder`, merged. `load_model` calls this for a folder holding adapter_config.json."""
    from peft import PeftModel  # heavy; only adapter folders need it
    from transformers import AutoTokenizer

    side = sidecar or {}
    base = adapter_base(folder, sidecar)
    m = load_model(base, adapter=adapter, device=device, dtype=dtype, allow_missing_weights=allow_missing_weights)
    slack = side.get("slack_id")
    if slack is not None and m.slack_id != slack:
        got = add_slack_token(m.module, m.tokenizer)
        if got != slack:
            raise BadInput(f"adapter folder {folder}: its {SLACK_TOKEN} is id {slack}, but added to base {base} "
                           f"it gets id {got}")
    rows = int(m.module.get_input_embeddings().weight.shape[0])
    if side.get("vocab_size") not in (None, rows):
        raise BadInput(f"adapter folder {folder} was trained on {side['vocab_size']} embedding rows; its base "
                       f"{base} has {rows}")
    if any((folder / f).is_file() for f in TOKENIZER_FILES):
        try:
            tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        except Exception as e:  # noqa: BLE001 - any tokenizer failure is the folder's
            raise BadInput(f"cannot load the tokenizer of {folder}: {first_line(e, with_type=True)}") from None
        if slack is not None and tok.convert_tokens_to_ids(SLACK_TOKEN) != slack:
            raise BadInput(f"adapter folder {folder}: its tokenizer does not give {SLACK_TOKEN} id {slack}")
        m.tokenizer = tok
    try:
        with warnings.catch_warnings():  # peft asks transformers 5 a deprecated question; not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            m.module = PeftModel.from_pretrained(m.module, str(folder)).merge_and_unload()
    except Exception as e:  # noqa: BLE001 - a mismatched or corrupt adapter is the user's input
        first = first_line(e)
        raise BadInput(f"cannot apply the adapter in {folder} to {base}: {first}") from None
    if slack is not None:
        m.slack_id = slack
    if "vocab_size" in m.extra:  # the remote adapters read V from here
        m.extra["vocab_size"] = rows
    m._drop_ids = None  # the tokenizer may have changed
    m.extra.update(base_checkpoint=str(base), adapter_folder=str(folder))
    return m
