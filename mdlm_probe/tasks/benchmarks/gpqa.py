"""`gpqa`: graduate-level multiple choice (Rein et al. 2023), diamond / main / extended.

Data: `--data-file` of the official password-protected `dataset.zip` (or any zip holding
`gpqa_<subset>.csv`), read in memory with the password the GPQA README publishes, or the csv itself;
else the Hub's gated `Idavidrein/gpqa` through `datasets`. The four options are shuffled with a seed fixed
per question (its Record ID), so a question reads the same in every run; the prompt is lm-eval's
generative GPQA format, ending in "Answer:". The chosen letter is scored against the shuffled correct one.

The GPQA authors ask that questions never appear in plain text online: nothing here logs or prints them
(records under runs/ hold them, and runs/ is git-ignored).
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import zipfile
from pathlib import Path

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.scoring import cut_at_stops, score_choice
from . import Benchmark, Sample, register

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
    rnd, out = random.Random(0), []
    for _ in rows:
        order = [0, 1, 2, 3]  # 0: the correct answer
        rnd.shuffle(order)
        out.append(LETTERS[order.index(0)])
    return "".join(out)


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
        out, seen = [], set()
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
                              reference_answer=letter, meta={"options": options}))
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
