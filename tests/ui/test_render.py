from rag.ui.render import (
    example_questions,
    kb_summary,
    placeholder,
    reply_markdown,
    sources_html,
)


def test_examples_come_from_the_knowledge_base_and_stand_alone(news_kb):
    qs = example_questions(news_kb)
    assert len(qs) == 4 and all("多少" in q and q.endswith("？") for q in qs)
    for q in qs:
        assert not q.startswith(("此次", "该", "其")) and not news_kb.answer(q).abstained
    assert placeholder(qs) == f"例如：{qs[0]}"


def test_summary_names_the_knowledge_base_not_a_fixed_page(tmp_path):
    from rag import KnowledgeBase

    (tmp_path / "tea.md").write_text("# 崂山茶\n\n崂山茶园面积有3.2万亩。", encoding="utf-8")
    kb = KnowledgeBase.build([tmp_path / "tea.md"])
    line = kb_summary("tea", kb)
    assert "tea" in line and "1 篇文档" in line and "崂山茶" in line and "青岛" not in line


def test_reply_and_sources_show_the_quote(news_kb):
    a = news_kb.answer("2024年青岛市进出口达多少亿元？")
    md = reply_markdown(a)
    assert md.startswith("**答案：9076.7亿元**") and 'href="#src-1"' in md
    html = sources_html(news_kb, a)
    assert "<mark>" in html and "9076.7亿元" in html.split("<mark>")[1].split("</mark>")[0]
    none = news_kb.answer("2024年济南市进出口总值是多少？")
    assert "没有找到" in reply_markdown(none) and "最接近" in sources_html(news_kb, none)


def test_markup_in_a_document_is_shown_as_text_not_run(tmp_path):
    from rag import KnowledgeBase

    (tmp_path / "x.txt").write_text(
        "<img src=x onerror=alert(1)>公告\n\n青岛<script>alert(2)</script>港2024年货物吞吐量达到7.1亿吨。",
        encoding="utf-8",
    )
    kb = KnowledgeBase.build([tmp_path / "x.txt"])
    for question in ("青岛港2024年货物吞吐量是多少？", "济南2019年的人口是多少？"):
        md = reply_markdown(kb.answer(question))
        assert "<img" not in md and "<script" not in md
    assert "<script" not in sources_html(kb, kb.answer("青岛港2024年货物吞吐量是多少？"))
