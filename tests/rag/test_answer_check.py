"""The answer check: its features, its stored form, and the decision it makes in the reader composer."""

import pytest

from rag import KnowledgeBase
from rag.answer_check import FEATURES, AnswerCheck, answer_features
from rag.reader_composer import ReaderComposer


def a_check(**changes) -> AnswerCheck:
    """Answers on the span score alone, unless `changes` say otherwise."""
    fields = dict(mean=[0.0] * 5, scale=[1.0] * 5, coef=[1.0, 0.0, 0.0, 0.0, 0.0], intercept=0.0, threshold=0.0)
    return AnswerCheck(**(fields | changes))


def test_logit_standardises_then_weighs_and_confidence_is_its_probability():
    check = a_check(mean=[1.0, 0, 0, 0, 0], scale=[2.0, 1, 1, 1, 1], coef=[1.0, -1.0, 0, 0, 0.5], intercept=0.25)
    assert check.logit([5.0, 2.0, 0.3, 0.3, 1.0]) == pytest.approx((5 - 1) / 2 - 2 + 0.5 + 0.25)
    assert check.confidence(0.0) == pytest.approx(0.5)
    assert check.confidence(3.0) > check.confidence(0.0) > check.confidence(-3.0)


def test_round_trips_through_its_dict_and_ignores_a_check_over_other_features():
    check = a_check(threshold=-0.7)
    assert AnswerCheck.from_dict(check.to_dict()) == check
    assert AnswerCheck.from_dict(None) is None and AnswerCheck.from_dict({}) is None
    other = check.to_dict() | {"features": [*FEATURES, "passage_cosine"]}  # a newer check this code cannot compute
    assert AnswerCheck.from_dict(other) is None


def test_a_check_reads_the_features_its_record_names():
    row = [2.0, 0.0, 0.5, 0.5, 1.0, 0.9]  # `answer_features` order: span score ... sentence cosine
    five = a_check()
    assert five.logit(row) == five.logit(row[:5]) == 2.0  # the cosine is not one of its features
    six = a_check(mean=[0.0] * 6, scale=[1.0] * 6, coef=[0.0] * 5 + [2.0], features=FEATURES)
    assert six.logit(row) == pytest.approx(1.8)
    assert AnswerCheck.from_dict(six.to_dict()) == six
    damaged = six.to_dict() | {"coef": [1.0] * 5}
    with pytest.raises(ValueError, match="names 6 features but has not as many weights"):
        AnswerCheck.from_dict(damaged)


def test_features_count_missing_names_and_judge_the_short_answers_kind(news_kb: KnowledgeBase):
    about_yantai = news_kb.evidence("2024年烟台市进出口总值是多少？")
    text = "2024年，青岛市进出口总值9076.7亿元，增长5.4%。"
    row = answer_features(about_yantai, text, None, "9076.7亿元", 3.5)
    assert len(row) == len(FEATURES)
    assert row[0] == 3.5 and row[1] >= 1  # 烟台 is not in what was read
    assert row[2:4] == [0.0, 0.0]  # no sentence found for the span
    assert row[4] == 1.0  # a 多少 question answered with a figure
    assert row[5] == 0.0  # no sentence, no cosine
    about_qingdao = news_kb.evidence("2024年青岛市进出口总值是多少？")
    assert answer_features(about_qingdao, text, None, "9076.7亿元", 3.5)[1] == 0
    assert answer_features(about_qingdao, text, None, "青岛市", 3.5)[4] == -1.0  # no figure in the answer
    what = news_kb.evidence("青岛的外贸主体是什么？")
    assert answer_features(what, text, None, "民营企业", 3.5)[4] == 0.0  # 什么: any kind of answer fits


def test_the_check_decides_and_gives_the_confidence(news_kb: KnowledgeBase):
    reader = news_kb.composer.reader
    question = "2024年青岛市进出口达多少亿元？"
    composer = ReaderComposer(news_kb.config, reader)
    finding = composer.find(news_kb.evidence(question))
    assert finding is not None and finding.short == "9076.7亿元" and len(finding.features) == len(FEATURES)

    def answer_with(check):
        composer._check, composer._check_read = check, True
        return composer.compose(news_kb.evidence(question))

    lenient = a_check(threshold=finding.score - 1)
    answered = answer_with(lenient)
    assert not answered.abstained and answered.short == "9076.7亿元"
    assert answered.confidence == round(lenient.confidence(finding.score), 3)
    strict = a_check(threshold=finding.score + 1)  # the same span, now below the check's threshold
    assert answer_with(strict).abstained
    # a threshold set in the config is a span-score threshold: the check stands aside
    forced = ReaderComposer(news_kb.config.replace(reader_threshold=finding.score - 1), reader)
    forced._check, forced._check_read = strict, True
    assert forced.answer_check is None and not forced.compose(news_kb.evidence(question)).abstained
