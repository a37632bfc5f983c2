"""The shipped checkpoints load by name and their sidecars say how they were made and what they score."""

import pytest

from mdlm_probe import load_model
from mdlm_probe.core.checkpoints import SHIPPED_DIR, missing_sidecar_keys, read_sidecar, shipped_names

TRAINED = ["tiny-ce", "tiny-ce-ft", "tiny-ctc", "tiny-ctc-surface"]
# issue 37: LLaDA's architecture with a byte-pair tokenizer, one family per digit tokenization (split: one digit
# per token; g3: up to three), each a CE fine-tune and two CTC+CE ones of the same CE base
SUBWORD = {"subword": ["subword-ce-ft", "subword-ctc", "subword-ctc-surface"],
           "subword-g3": ["subword-g3-ce-ft", "subword-g3-ctc", "subword-g3-ctc-surface"]}


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


@pytest.mark.parametrize("family", sorted(SUBWORD))
def test_subword_families_load_by_name_and_record_how_they_were_made(family):
    names = SUBWORD[family]
    assert set(names) <= set(shipped_names())
    sides = [read_sidecar(SHIPPED_DIR / n) for n in names]
    for name, side in zip(names, sides):
        assert missing_sidecar_keys(side) == [] and side["name"] == name and side["adapter"] == "llada"
        assert sum(f.stat().st_size for f in (SHIPPED_DIR / name).iterdir()) <= 10 * 2**20  # the limit
        m = load_model(name)  # the folder's own modeling file, through trust_remote_code
        assert (m.mask_id, m.eos_id, m.slack_id) == (side["mask_id"], side["eos_id"], side["slack_id"])
        if side["objective"] == "ctc+ce":  # the CE fine-tune has no <slack>
            assert m.tokenizer.convert_ids_to_tokens(m.slack_id) == "<slack>"
        held = side["heldout"]
        assert held["benchmark"] == "synthetic" and held["n"] >= 1000 and 0 < held["accuracy"] <= 1
        assert side["objective"] == ("ce" if name.endswith("ce-ft") else "ctc+ce")
        if side["objective"] == "ctc+ce":
            assert side["collapse"] == ("surface" if name.endswith("surface") else "ctc")
    for key in ("init", "steps", "data", "batch_size", "seed", "lr"):  # trained side by side from one base
        assert len({s[key] for s in sides}) == 1, key


def test_readme_table_matches_the_subword_sidecars():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Shipped checkpoints"):]
    for name in [n for names in SUBWORD.values() for n in names]:
        row = re.search(rf"^\| `{re.escape(name)}` \|(.*)$", table, re.M)
        assert row, f"no README row for {name}"
        acc = read_sidecar(SHIPPED_DIR / name)["heldout"]["accuracy"]
        assert f"{acc:.3f}" in [c.strip() for c in row.group(1).split("|")], (name, acc)
