"""Labelled scoring cases: GSM8K number formats, stop strings, GPQA letter extraction."""

import pytest

from mdlm_probe.tasks.scoring import (cut_at_stops, extract_choice_flexible, extract_choice_strict, normalize_number,
                                      score_choice, score_math)


@pytest.mark.parametrize("raw, norm", [
    ("$1,200.00", "1200"), ("1,200", "1200"), ("-5", "-5"), ("7.", "7"), ("7.50", "7.5"), ("0.0", "0"),
    ("007", "7"), ("-0", "0"), (None, None),
])
def test_normalize_number(raw, norm):
    assert normalize_number(raw) == norm


@pytest.mark.parametrize("text, ref, extracted, verdict, strict, flexible", [
    ("She pays 2*600 = $1,200.00 in total.\n#### $1,200.00", "1200", "1200", "correct", True, True),
    ("#### 1,200", "1200", "1200", "correct", True, True),
    ("The temperature drops to -5 degrees. #### -5", "-5", "-5", "correct", True, True),
    ("Each costs 3 dollars, so 7 in all. The answer is 7.", "7", "7", "correct", True, True),
    ("I do not know.", "7", None, "no_answer", False, False),
    ("", "7", None, "no_answer", False, False),
    # strict wins over a later stray number
    ("#### 12 (checked in 2 ways)", "12", "12", "correct", True, False),
    # no strict answer: flexible (last number) is scored
    ("3 + 4 = 8", "7", "8", "wrong", False, False),
    ("so 3 + 4 = 7", "7", "7", "correct", False, True),
    ("#### 5", "$5.00", "5", "correct", True, True),
])
def test_score_math_labelled(text, ref, extracted, verdict, strict, flexible):
    s = score_math(text, ref)
    assert (s["extracted"], s["verdict"]) == (extracted, verdict)
    assert s["correct"] is (verdict == "correct")
    assert (s["scores"]["strict"], s["scores"]["flexible"]) == (strict, flexible)


def test_score_math_without_reference_is_unscored():
    s = score_math("#### 4", None)
    assert s["correct"] is None and s["extracted"] == "4"


def test_cut_at_stops_drops_a_made_up_next_question():
    text = " 2+2=4 #### 4\n\nQuestion: Tom has 9 cups. How many?\nAnswer: #### 9"
    cut = cut_at_stops(text, ("Question:", "</s>"))
    assert cut == " 2+2=4 #### 4\n\n"
    assert score_math(cut, "4")["correct"] and not score_math(text, "4")["correct"]
    assert cut_at_stops("no stop here", ("Question:",)) == "no stop here"


@pytest.mark.parametrize("text, strict, flexible", [
    ("The answer is (B).", "B", "B"),
    ("the answer is C", "C", None),
    ("Answer: D", "D", None),
    ("(A) looks wrong, (C) fits best", None, "C"),
    (" B", None, "B"),
    ("B) because the energy is conserved", None, "B"),
    ("(D)", None, "D"),
    ("A good question: the energy is conserved", None, None),  # the article, not a choice
    ("The answer is a bit unclear", None, None),  # lower-case article after "answer is"
    ("no letter", None, None),
])
def test_choice_extraction_labelled(text, strict, flexible):
    assert extract_choice_strict(text) == strict
    assert extract_choice_flexible(text) == flexible


def test_score_choice_verdicts():
    assert score_choice("The answer is (B).", "B")["verdict"] == "correct"
    assert score_choice("The answer is (B).", "(C)")["verdict"] == "wrong"  # "(C)" is normalised to "C"
    s = score_choice("I think (A) but the answer is (C)", "C")
    assert s["extracted"] == "C" and s["scores"] == {"strict": True, "flexible": True, "strict_found": True}
    s = score_choice("hmm", "A")
    assert s["verdict"] == "no_answer" and s["correct"] is False
