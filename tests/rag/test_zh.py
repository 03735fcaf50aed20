from rag.zh import to_simplified, to_traditional, traditional_share


def test_traditional_share_tells_the_scripts_apart():
    simplified = "2024年青岛市进出口达9076.7亿元，占同期山东省进出口总值的26.8%。"
    assert traditional_share([simplified]) == 0.0
    assert traditional_share([to_traditional(simplified), "。"]) > 0.3
    assert traditional_share(["no Chinese here"]) == 0.0
    assert to_simplified(to_traditional(simplified)) == simplified
