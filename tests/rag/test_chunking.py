from rag.chunking import Chunker, repaired
from rag.documents import load_documents

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
