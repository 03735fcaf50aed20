from rag.conversation import contextualize, is_follow_up, restate


def test_follow_up_is_folded_into_the_previous_question():
    prev = ["青岛有几个项目入选省绿色低碳高质量发展重点项目？"]
    assert is_follow_up("总投资多少？") and not is_follow_up(prev[0])
    assert contextualize("总投资多少？", prev).endswith("总投资多少？")
    assert "项目入选省绿色低碳" in contextualize("总投资多少？", prev)
    assert contextualize("鳎鱼项目用了几个月出鱼？", prev) == "鳎鱼项目用了几个月出鱼？"


def test_an_opening_connective_is_dropped_whole():
    prev = ["青岛有几个项目入选省绿色低碳高质量发展重点项目？"]
    assert contextualize("其中建设类项目有几个？", prev).endswith(" 建设类项目有几个？")
    assert contextualize("其总投资多少？", prev).endswith(" 总投资多少？")


def test_a_short_question_that_names_its_own_topic_stands_alone():
    prev = ["2024年青岛市进出口总值是多少？"]
    assert not is_follow_up("青岛市市长是谁？")
    assert contextualize("青岛市市长是谁？", prev) == "青岛市市长是谁？"
    # naming a place and nothing else, or only a word more, still leans on the question before
    assert is_follow_up("青岛市呢？") and is_follow_up("黄岛区有几个？")
    assert contextualize("胶州市呢？", prev).startswith("2024年青岛市进出口总值")


def test_asking_the_same_of_another_year_or_place_restates_the_question():
    prev = ["2024年青岛市进出口总值是多少？"]
    assert restate("2023年呢？", prev) == "2023年青岛市进出口总值是多少？"
    assert restate("那黄岛区的呢？", prev) == "2024年黄岛区进出口总值是多少？"
    # a chain of them restates the last self-contained question each time
    assert restate("2022年呢？", prev + ["2023年呢？"]) == "2022年青岛市进出口总值是多少？"
    # nothing of the same kind to replace, or not a 「X呢？」 question: joined to the topic instead
    assert restate("2023年呢？", ["青岛有几个项目入选省重点项目？"]) is None
    assert restate("出口呢？", prev) is None and restate("总投资多少？", prev) is None
    assert restate("2023年呢？", []) is None
    # the year replaced is a calendar year, not the first four digits of a figure
    assert restate("2023年呢？", ["投资2000亿元的项目2024年开工了几个？"]) == "投资2000亿元的项目2023年开工了几个？"
