"""The shipped checkpoints load by name and their sidecars say how they were made and what they score."""

import pytest

from mdlm_probe import load_model
from mdlm_probe.core.checkpoints import SHIPPED_DIR, missing_sidecar_keys, read_sidecar

TRAINED = ["tiny-ce", "tiny-ce-ft", "tiny-ctc", "tiny-ctc-surface"]


@pytest.mark.parametrize("name", TRAINED + ["tiny-random"])
def test_loads_by_name_with_a_complete_sidecar(name):
    side = read_sidecar(SHIPPED_DIR / name)
    assert side is not None and missing_sidecar_keys(side) == []
    assert side["name"] == name
    m = load_model(name)
    assert (m.mask_id, m.eos_id, m.slack_id) == (side["mask_id"], side["eos_id"], side["slack_id"])
    assert m.tokenizer.convert_ids_to_tokens(m.mask_id) == "[MASK]"
    assert m.tokenizer.convert_ids_to_tokens(m.slack_id) == "<slack>"
    assert sum(f.stat().st_size for f in (SHIPPED_DIR / name).iterdir()) <= 8 * 2**20


@pytest.mark.parametrize("name", TRAINED)
def test_trained_sidecars_record_training_and_heldout_accuracy(name):
    side = read_sidecar(SHIPPED_DIR / name)
    assert side["steps"] > 0 and side["train_seconds"] > 0 and side["data"] == "synthetic"
    held = side["heldout"]
    assert held["benchmark"] == "synthetic" and held["n"] >= 1000 and 0 < held["accuracy"] <= 1
    assert held["sampler"]["temperature"] == 0.0
    if name == "tiny-ce":  # from scratch, in stages: stage 1 from "tiny", later stages from the one before
        assert side["init"] in ("tiny", "tiny-ce-s1", "tiny-ce-s2", "tiny-ce-s3", "tiny-ce-s4") and side["objective"] == "ce"
    else:
        assert side["init"] == "tiny-ce"
    if name.startswith("tiny-ctc"):
        assert side["objective"] == "ctc+ce"
        assert side["collapse"] == ("surface" if name.endswith("surface") else "ctc")


def test_fine_tunes_share_steps_data_batch_and_seed():
    sides = [read_sidecar(SHIPPED_DIR / n) for n in TRAINED[1:]]
    for key in ("steps", "data", "batch_size", "seed", "lr"):
        assert len({s[key] for s in sides}) == 1, key


def test_readme_table_matches_the_sidecars():
    """The README's "Shipped checkpoints" table states each model's held-out accuracy as its sidecar records it."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Shipped checkpoints"):]
    for name in TRAINED:
        row = re.search(rf"^\| `{re.escape(name)}` \|(.*)$", table, re.M)
        assert row, f"no README row for {name}"
        cells = [c.strip() for c in row.group(1).split("|")]
        acc = read_sidecar(SHIPPED_DIR / name)["heldout"]["accuracy"]
        assert f"{acc:.3f}" in cells, (name, cells, acc)
