from rag.zh import (
    question_from_sentence,
    question_type,
    to_simplified,
    to_traditional,
    traditional_share,
    year_mismatch,
)


def test_traditional_share_tells_the_scripts_apart():
    simplified = "2024年青岛市进出口达9076.7亿元，占同期山东省进出口总值的26.8%。"
    assert traditional_share([simplified]) == 0.0
    assert traditional_share([to_traditional(simplified), "。"]) > 0.3
    assert traditional_share(["no Chinese here"]) == 0.0
    assert to_simplified(to_traditional(simplified)) == simplified


def test_examples_need_a_year_or_a_name():
    assert question_from_sentence("2024年青岛市进出口达9076.7亿元。") == "2024年青岛市进出口是多少？"
    assert question_from_sentence("2024年，青岛市进出口达9076.7亿元。") == "青岛市进出口是多少？"
    assert question_from_sentence("此次出鱼数量约有5万尾。") is None
    assert question_from_sentence("项目总投资1.2亿元。") is None


def test_a_count_is_asked_by_its_question_word_not_by_a_figure_the_question_states():
    assert question_type("参会者来自几个国家？") == "quantity"
    assert question_type("黑龙江省的土地面积是全国第几大?") == "quantity"  # a rank: answered with a figure
    assert question_type("下萨克森有约百分之75的面积为什么地形？") == "which"
    assert question_type("太阳在什么时期有约七十年几乎没有黑子活动？") == "which"
    assert question_type("几何光学，又称为什么?") == "which"
    assert question_type("在法国殖民前，几内亚地区采用什么贸易方式？") == "which"
    assert question_type("夏尔精通哪几门语言？") == "list"


def test_a_quote_that_covers_none_of_the_questions_years_is_a_mismatch():
    assert year_mismatch("2023年青岛市进出口总值是多少？", "2024年青岛市进出口达9076.7亿元") == (["2023"], ["2024"])
    # the year asked is named, or inside a range the quote names, or one side names no year
    assert year_mismatch("2024年青岛比2023年增长多少？", "2024年增长3.6%") is None
    assert year_mismatch("2025年的目标是什么？", "到2023—2027年，建成千亿级产业") is None
    assert year_mismatch("2025年的目标是什么？", "2023-27年") is None
    assert year_mismatch("青岛进出口总值是多少？", "2024年青岛市进出口达9076.7亿元") is None
    assert year_mismatch("2025年有多少家？", "全市有2024家企业") is None  # a count, not a year
    assert year_mismatch("2028年的目标是什么？", "2023-27年") == (["2028"], ["2023", "2027"])
    assert year_mismatch("2027年的目标是什么？", "2027—2023年") is None  # a range written backwards names its ends
