"""The reply text: the short answer with its confidence, a warning when it is low, the abstention."""

from rag.reply import LOW_CONFIDENCE, UNSURE, render_text
from rag.schema import Answer, Citation
from rag.ui.render import reply_markdown


def _answer(confidence):
    quote = Citation(1, "d", "《标题》", "青岛市进出口总值9076.7亿元。", 0, 17, 3.2)
    return Answer("青岛进出口总值是多少？", "", "9076.7亿元", False, [quote], confidence=confidence)


def test_the_confidence_is_shown_and_a_low_one_says_to_check_the_quote():
    sure, unsure = _answer(0.93), _answer(LOW_CONFIDENCE - 0.01)
    assert render_text(sure).splitlines()[0] == "答案：9076.7亿元（置信度 93%）"
    assert UNSURE in render_text(unsure) and UNSURE not in render_text(sure)
    assert "置信度 49%" in reply_markdown(unsure) and UNSURE in reply_markdown(unsure)


def test_nothing_is_claimed_when_no_calibration_gave_a_confidence():
    assert render_text(_answer(None)).splitlines()[0] == "答案：9076.7亿元"
    assert "置信度" not in reply_markdown(_answer(None))


def test_a_quote_about_another_year_is_pointed_out():
    answer = _answer(0.3)
    answer.year_mismatch = (["2023"], ["2024"])
    assert render_text(answer).splitlines()[1] == "注意：问题说的是2023年，引文说的是2024年。"
    assert "注意：问题说的是2023年，引文说的是2024年。" in reply_markdown(answer)
    assert answer.to_dict()["year_mismatch"] == {"asked": ["2023"], "quoted": ["2024"]}
    assert "注意" not in render_text(_answer(0.3)) and _answer(0.3).to_dict()["year_mismatch"] is None
