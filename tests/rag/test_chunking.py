from rag.chunking import Chunker, char_map, repaired
from rag.documents import Document, load_documents
from tests.conftest import CORPUS


def _chunks():
    doc = load_documents([CORPUS])[0]
    return doc, Chunker().split(doc)


def test_the_page_has_ten_articles_with_titles():
    _, chunks = _chunks()
    titles = list(dict.fromkeys(c.title for c in chunks))
    assert len(titles) == 10
    assert titles[0].startswith("青岛构建“10+1”创新型产业体系")
    assert "2024年青岛进出口达9076.7亿元" in titles
    assert "绿色养殖忙 大棚鳎鱼肥" in titles


def test_broken_paragraphs_are_glued_and_offsets_point_into_the_original():
    doc, chunks = _chunks()
    text = "\n".join(c.text for c in chunks)
    for glued in ("提质发展3个优势产业，包括智能家电", "帮助企业拓展国际市场", "西海岸新区“一事一议”"):
        assert glued in text
    for c in chunks:
        assert len(c.sentences) == len(c.sentence_spans)
        for (a, b), (x, y) in zip(c.sentences, c.sentence_spans):
            assert repaired(doc.text[a:b]) == c.text[x:y]
            assert doc.text[a:b] not in c.title.split(" ")  # headlines are never quoted


def test_sections_and_chunk_sizes():
    _, chunks = _chunks()
    assert any(c.section == "发挥科技创新引领作用" for c in chunks)
    assert all(len(c.text) <= 400 for c in chunks)


def test_long_paragraph_is_split_at_sentence_ends():
    from rag.documents import Document

    para = "".join(f"第{i}句讲了一件很长的事情，内容足够长。" for i in range(40))
    chunks = Chunker(max_chars=120, min_chars=20).split(Document("d", para))
    assert len(chunks) > 5
    assert all(c.text.endswith("。") for c in chunks)
    assert "".join(c.text for c in chunks) == para


def test_char_map_takes_every_indexed_character_back_to_the_document():
    doc = Document("d", "标题\n\n第一句说了帮助企\n\n业拓展国际市场。第二句 with\nLatin words。\n\n第三段。")
    for chunk in Chunker(max_chars=200, min_chars=5).split(doc):
        where = char_map(doc.text, chunk)
        assert len(where) == len(chunk.text)
        for ch, at in zip(chunk.text, where):
            if at >= 0:
                assert doc.text[at] == ch or (ch == " " and doc.text[at].isspace())
    page = load_documents([CORPUS])[0]
    for chunk in Chunker().split(page):
        where = [i for i in char_map(page.text, chunk) if i >= 0]
        assert where == sorted(where) and where[0] == chunk.start and where[-1] == chunk.end - 1
