from rag.zh import question_from_sentence, to_simplified, to_traditional, traditional_share


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
