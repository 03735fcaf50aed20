from rag.composer import question_type, short_answer


def test_question_types():
    assert question_type("2024年青岛进出口总值是多少？") == "quantity"
    assert question_type("对接会什么时候举行？") == "date"
    assert question_type("优势产业包括哪些？") == "list"


def test_short_answer_picks_the_span_near_the_question_words():
    quote = "2024年青岛市进出口达9076.7亿元，占同期山东省进出口总值的26.8%，同比增长3.6%。"
    assert short_answer("2024年青岛市进出口总值是多少？", quote) == "9076.7亿元"
    assert short_answer("青岛进出口占山东省的比重是多少？", quote) == "26.8%"
    assert short_answer("青岛进出口同比增长多少？", quote) == "3.6%"
    assert short_answer("对接会什么时候举行？", "1月16日至17日，对接会在上合示范区举行。") == "1月16日至17日"
    assert short_answer("谁主持了会议？", quote) is None
