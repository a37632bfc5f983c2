"""`gpqa`: graduate-level multiple choice (Rein et al. 2023), diamond / main / extended.

Data: `--data-file` of the official password-protected `dataset.zip` (or any zip holding
`gpqa_<subset>.csv`), read in memory with the password the GPQA README publishes, or the csv itself;
else the Hub's gated `Idavidrein/gpqa` through `datasets`. The four options are shuffled with a seed fixed
per question (its Record ID), so a question reads the same in every run; the prompt is lm-eval's
generative GPQA format, ending in "Answer:". The chosen letter is scored against the shuffled correct one.

The GPQA authors ask that questions never appear in plain text online: nothing here logs or prints them
(records under runs/ hold them, and runs/ is git-ignored).

Reference protocol `opencompass:gpqa_fewshot_gen` (LLaDA-Instruct's published GPQA, a preset's prompt_format):
OpenCompass's fixed 5-shot text holds GPQA questions, so it is never stored here: it is read with `ast` (never
executed) from `five_shot_prompt` in the user's own checkout (`--protocol-source`) and must have the sha256 of
the pinned config (OC_FIVE_SHOT_SHA256). Options follow OpenCompass's order (one seed-0 shuffle stream over the
csv in file order, `opencompass_letters`), the raw csv text, and the correct letter is OpenCompass's.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import random
import warnings
import zipfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.scoring import cut_at_stops, score_choice
from . import Benchmark, Sample, register
from .gsm8k import chat

HUB = "Idavidrein/gpqa"
SUBSETS = ("diamond", "main", "extended")
ZIP_PASSWORD = b"deserted-untie-orchid"  # published in the README of github.com/idavidrein/gpqa
LETTERS = "ABCD"
REQUIRED = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
STOPS = ("Question:", "</s>", "<|im_end|>")
DESCRIPTION = ("Here are some example questions from experts. Answer the final question yourself, "
               "following the format of the previous questions exactly.\n")


def clean(text: str | None) -> str:
    """lm-eval's preprocessing of GPQA options."""
    if text is None:
        return " "
    return text.strip().replace(" [title]", ". ").replace("  ", " ")


def _csv_rows(data: bytes, where: str) -> list[dict]:
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise BadInput(f"{where}: not a readable GPQA csv ({e})") from None
    if not rows:
        raise BadInput(f"{where}: no rows")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise BadInput(f"{where}: not a GPQA csv (missing columns: {', '.join(missing)})")
    return rows


def read_file(path: Path, subset: str) -> list[dict]:
    if not path.is_file():
        raise BadInput(f"no data file {path}")
    if path.suffix.lower() != ".zip":
        return _csv_rows(path.read_bytes(), str(path))
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise BadInput(f"{path}: not a zip file") from None
    with zf:
        csvs = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        want = [n for n in csvs if Path(n).name == f"gpqa_{subset}.csv"]
        if not want and len(csvs) == 1:
            want = csvs
        if not want:
            raise BadInput(f"{path} holds no gpqa_{subset}.csv (it has: {', '.join(Path(n).name for n in csvs) or 'no csv'})")
        try:
            data = zf.read(want[0], pwd=ZIP_PASSWORD)  # in memory only: never extracted to disk
        except (RuntimeError, zipfile.BadZipFile) as e:
            raise BadInput(f"{path}: cannot read {want[0]} ({e})") from None
    return _csv_rows(data, f"{path}:{want[0]}")


def shuffled_options(native_id: str, correct: str, incorrect: list[str]) -> tuple[list[str], str]:
    """Options in an order fixed by the question's id, and the correct letter."""
    options = [clean(x) for x in incorrect] + [clean(correct)]
    seed = int.from_bytes(hashlib.sha256(f"gpqa/{native_id}".encode()).digest()[:8], "big")
    random.Random(seed).shuffle(options)
    return options, LETTERS[options.index(clean(correct))]


def opencompass_letters(rows: list[dict]) -> str:
    """The correct letters OpenCompass's GPQADataset_ gives the rows in file order: random.seed(0) once, then
    one shuffle of [correct, wrong 1-3] per row from that single stream (datasets/gpqa.py:55-65)."""
    return "".join(o["answer"] for o in opencompass_options(rows))


def opencompass_options(rows: list[dict]) -> list[dict]:
    """Per row in file order, OpenCompass's GPQADataset_ line: the raw csv question and options A-D after its
    seed-0 stream's shuffle, and the letter of the first option equal to the correct text (datasets/gpqa.py:55-83)."""
    rnd, out = random.Random(0), []
    for r in rows:
        options = [r.get(k) or "" for k in ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                                             "Incorrect Answer 3")]
        correct = options[0]
        rnd.shuffle(options)
        out.append({"question": r.get("Question") or "", "options": options,
                    "answer": LETTERS[options.index(correct)]})
    return out


# ---------------------------------------------------------------- OpenCompass's few-shot GPQA (LLaDA-Instruct)
OC_FORMAT = "opencompass:gpqa_fewshot_gen"
OC_CONFIG = "configs/datasets/gpqa/gpqa_fewshot_gen.py"  # inside the opencompass package
# sha256 of `five_shot_prompt` in ML-GSAI/LLaDA@b7e6c35 opencompass/opencompass/configs/datasets/gpqa/
# gpqa_fewshot_gen.py (git blob 3ee07674; tests/fixtures/protocols/opencompass-llada-instruct-gpqa.json)
OC_FIVE_SHOT_SHA256 = "6d720fc41f3efd2df1eff69815b01d7f4c013f0cea266826b093ce66815b0ece"
OC_SUFFIX = ("When you're ready to answer, please use the format 'The correct answer is (X)' where X is the "
             "correct letter choice from 'ABCD'.")  # gpqa_fewshot_gen.py:83
SOURCE_HINT = ("pass --protocol-source PATH: your checkout of ML-GSAI/LLaDA (b7e6c35) or of OpenCompass, or the "
               f"file opencompass/{OC_CONFIG} itself")


def oc_config_file(source: str | Path) -> Path:
    """The gpqa_fewshot_gen.py under `source`: the file itself, or a LLaDA / OpenCompass checkout holding it."""
    root = Path(source).expanduser()
    if root.is_file():
        return root
    for cand in (root / "opencompass" / "opencompass" / OC_CONFIG, root / "opencompass" / OC_CONFIG, root / OC_CONFIG):
        if cand.is_file():
            return cand
    raise BadInput(f"--protocol-source {source}: no opencompass/{OC_CONFIG} there; {SOURCE_HINT}")


@lru_cache(maxsize=None)
def _five_shot(path: str) -> tuple[str, str]:
    where = f"--protocol-source {path}"
    try:
        with warnings.catch_warnings():  # the pinned config has invalid escapes in its strings: not our warning
            warnings.simplefilter("ignore")
            tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as e:
        raise BadInput(f"{where}: not a readable Python file ({type(e).__name__})") from None
    found = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
             and isinstance(n.value.value, str)
             and any(getattr(t, "id", None) == "five_shot_prompt" for t in n.targets)]
    if len(found) != 1:
        raise BadInput(f"{where}: expected one top-level string five_shot_prompt = \"\"\"...\"\"\" (OpenCompass's "
                       f"{OC_CONFIG}), found {len(found)}")
    return found[0], hashlib.sha256(found[0].encode("utf-8")).hexdigest()


def opencompass_five_shot(source: str | Path) -> tuple[str, Path, str]:
    """(five_shot_prompt, the config file, its sha256) from the user's checkout, read with `ast` (nothing is
    executed); BadInput unless its sha256 is the pinned config's (the published protocol's text)."""
    path = oc_config_file(source).resolve()
    text, digest = _five_shot(str(path))
    if digest != OC_FIVE_SHOT_SHA256:
        raise BadInput(f"--protocol-source {path}: five_shot_prompt has sha256 {digest[:16]}..., not the "
                       f"{OC_FIVE_SHOT_SHA256[:16]}... of ML-GSAI/LLaDA@b7e6c35's config (the published protocol)")
    return text, path, digest


@register("gpqa")
class GPQA(Benchmark):
    subsets = SUBSETS
    kind = "choice"
    stops = STOPS
    local_files = ("gpqa/dataset.zip", "gpqa/gpqa_diamond.zip")

    @property
    def subset(self) -> str:
        s = self.options.get("subset") or "diamond"
        if s not in SUBSETS:
            raise BadInput(f"unknown GPQA subset {s!r}; expected one of {', '.join(SUBSETS)}")
        return s

    def load(self) -> list[Sample]:
        rows = read_file(self.data_file, self.subset) if self.data_file else \
            [dict(r) for r in self.hub_dataset(HUB, f"gpqa_{self.subset}", split="train", data_file="dataset.zip")]
        out, seen, oc = [], set(), opencompass_options(rows)  # OpenCompass's order needs every row, in file order
        for i, r in enumerate(rows):
            nid = (r.get("Record ID") or "").strip() or str(i)
            if nid in seen:
                raise BadInput(f"GPQA data has the Record ID {nid!r} twice")
            seen.add(nid)
            if not (r.get("Question") or "").strip() or not (r.get("Correct Answer") or "").strip():
                raise BadInput(f"GPQA row {i + 1} ({nid}) has no question or no correct answer")
            options, letter = shuffled_options(nid, r["Correct Answer"],
                                               [r.get(f"Incorrect Answer {k}") for k in (1, 2, 3)])
            out.append(Sample(native_id=nid, question=r["Question"].strip(), reference=clean(r["Correct Answer"]),
                              reference_answer=letter, meta={"options": options, "opencompass": oc[i]}))
        return out

    def data_source(self) -> str:
        return f"{self.data_file} ({self.subset})" if self.data_file else f"hub:{HUB}/gpqa_{self.subset}"

    @staticmethod
    def _block(s: Sample) -> str:
        opts = "\n".join(f"({L}) {o}" for L, o in zip(LETTERS, s.meta["options"]))
        return f"Question: {s.question}\nChoices:\n{opts}\nAnswer:"

    def prompt(self, sample: Sample, num_fewshot: int = 0) -> str:
        if num_fewshot <= 0:
            return self._block(sample)
        # lm-eval's n-shot GPQA draws examples from the same set; never the question itself.
        pool = [s for s in self._all() if s.native_id != sample.native_id]
        if num_fewshot > len(pool):
            raise BadInput(f"--num-fewshot {num_fewshot} exceeds the {len(pool)} other GPQA questions")
        shots = random.Random(f"gpqa-fewshot/{sample.native_id}").sample(pool, num_fewshot)
        blocks = [f"{self._block(s)} The answer is ({s.reference_answer})." for s in shots]
        return DESCRIPTION + "\n\n".join(blocks + [self._block(sample)])

    def _all(self) -> list[Sample]:
        if getattr(self, "_samples", None) is None:
            self._samples = self.load()
        return self._samples

    def score(self, text: str, sample: Sample) -> dict:
        return score_choice(cut_at_stops(text, self.stops), sample.reference_answer)

    # ---------------------------------------------------------------- reference protocols (a preset's prompt_format)
    prompt_formats = (OC_FORMAT,)

    def protocol_sample(self, sample: Sample, fmt: str) -> Sample:
        """The sample as the reference scores it: OpenCompass's correct letter (its option order)."""
        return replace(sample, reference_answer=sample.meta["opencompass"]["answer"]) if fmt == OC_FORMAT else sample

    def protocol_prompt(self, sample: Sample, fmt: str, num_fewshot: int = 5, world_size: int = 1, *,
                        source: str | Path | None = None) -> dict:
        """OpenCompass's prompt (gpqa_fewshot_gen.py:83): the fixed 5-shot text from `source` (the user's
        checkout), the raw question and options in its order, one user turn."""
        if fmt != OC_FORMAT:
            raise BadInput(f"gpqa has no prompt format {fmt!r}; expected one of {', '.join(self.prompt_formats)}")
        if num_fewshot != 5:
            raise BadInput(f"--num-fewshot {num_fewshot}: {OC_FORMAT}'s examples are one fixed 5-shot text (use 5)")
        if source is None:
            raise BadInput(f"{OC_FORMAT}'s 5-shot text holds GPQA questions, which mdlm-probe does not store; "
                           f"{SOURCE_HINT}")
        five, oc = opencompass_five_shot(source)[0], sample.meta["opencompass"]
        choices = "\n".join(f"{L}. {o}" for L, o in zip(LETTERS, oc["options"]))
        return chat([("user", f"{five}\nQuestion:\n{oc['question']}\nChoices:\n{choices}\n{OC_SUFFIX}")])
