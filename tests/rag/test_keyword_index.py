from rag.keyword_index import ChineseTokenizer, KeywordIndex


def test_words_and_bigrams_and_user_dictionary(tmp_path):
    plain = ChineseTokenizer()
    tokens = plain("青岛海关发布数据")
    assert "青岛" in tokens and "海关" in tokens and "关发" in tokens  # a bigram across words
    assert "鲜达陆上生态循环养殖园区" not in plain("鲜达陆上生态循环养殖园区")
    user = tmp_path / "dict.txt"
    user.write_text("鲜达陆上生态循环养殖园区 10 nz\n", encoding="utf-8")
    assert "鲜达陆上生态循环养殖园区" in ChineseTokenizer(str(user))("鲜达陆上生态循环养殖园区")


def test_bm25_scores_and_idf():
    tok = ChineseTokenizer()
    index = KeywordIndex([tok("青岛进出口总值"), tok("鳎鱼养殖项目"), tok("青岛民生攻坚")])
    scores = index.scores(tok("鳎鱼"))
    assert scores.argmax() == 1 and scores[0] == 0
    idf = index.idf({"青岛", "鳎鱼"})
    assert idf["鳎鱼"] > idf["青岛"]


def test_an_index_saved_with_the_numba_backend_loads_and_numba_stays_unloaded(tmp_path):
    """bm25s is imported without numba (cold-start cost); indexes saved by a bm25s that chose
    its numba backend still load, and numba stays importable for the metrics library."""
    import json
    import subprocess
    import sys

    tok = ChineseTokenizer()
    KeywordIndex([tok("青岛进出口总值"), tok("鳎鱼养殖项目")]).save(tmp_path / "bm25")
    params = tmp_path / "bm25" / "params.index.json"
    params.write_text(json.dumps({**json.loads(params.read_text()), "backend": "numba"}))
    code = (
        "import sys, numpy as np; from rag.keyword_index import ChineseTokenizer, KeywordIndex; "
        f"i = KeywordIndex.load(__import__('pathlib').Path({str(tmp_path / 'bm25')!r}), np.arange(2)); "
        "assert i.scores(ChineseTokenizer()('鳎鱼')).argmax() == 1; "
        "assert 'numba' not in sys.modules; import numba"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
