"""`synthetic`: the held-out split of the synthetic arithmetic task (mdlm_probe.tasks.synthetic)."""

from __future__ import annotations

from mdlm_probe.tasks import synthetic as task
from mdlm_probe.tasks.scoring import score_math
from . import Benchmark, Sample, register


@register("synthetic")
class Synthetic(Benchmark):
    def load(self) -> list[Sample]:
        return [Sample(native_id=str(i), question=p.question, reference=p.solution, reference_answer=p.answer)
                for i, p in enumerate(task.heldout(task.HELDOUT_SIZE))]

    def prompt(self, sample: Sample, num_fewshot: int = 0) -> str:
        return task.format_prompt(sample.question)

    def score(self, text: str, sample: Sample) -> dict:
        return score_math(text, sample.reference_answer)
