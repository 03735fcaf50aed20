import errno
import json

import pytest

from rag import Config, IndexMismatchError, KnowledgeBase
from rag.store import StoreWriteError
from rag.zh import to_traditional
from tests.conftest import CORPUS


def test_search_returns_cited_passages(news_kb):
    hits = news_kb.search("青岛有多少个项目入选省绿色低碳高质量发展重点项目", k=3)
    assert hits[0].title == "青岛再添99个省绿色低碳高质量发展重点项目"
    for h in hits:
        assert h.dense_score is not None and h.keyword_score is not None
        assert news_kb.document(h.doc_id)[h.start : h.end].replace("\n", "")[:10] == h.text.replace("\n", "")[:10]


def test_modes_all_rank_the_right_article(news_kb):
    for mode in ("hybrid", "dense", "keyword"):
        assert "鳎鱼" in news_kb.search("鳎鱼养殖项目用了多久出鱼", k=1, mode=mode)[0].title


def test_unknown_mode_is_a_clear_error(news_kb):
    with pytest.raises(ValueError, match="hybrid"):
        news_kb.search("青岛", mode="fuzzy")


def test_open_roundtrip_add_and_remove(news_kb, tmp_path):
    path = news_kb.path
    kb = KnowledgeBase.open(path)
    assert len(kb.chunks) == len(news_kb.chunks)
    extra = tmp_path / "extra.txt"
    extra.write_text("崂山茶\n\n崂山茶产自青岛崂山，2024年产量达到300吨。", encoding="utf-8")
    kb.add([extra])
    kb2 = KnowledgeBase.open(path)
    assert "extra.txt" in kb2.documents
    assert kb2.answer("崂山茶2024年产量是多少？").short == "300吨"
    kb2.remove(["extra.txt"])
    kb3 = KnowledgeBase.open(path)
    assert "extra.txt" not in kb3.documents and len(kb3.chunks) == len(news_kb.chunks)


def test_index_from_another_model_or_format_is_refused(news_kb):
    with pytest.raises(IndexMismatchError, match="rebuild|Rebuild"):
        KnowledgeBase.open(news_kb.path, Config(model="BAAI/bge-small-zh-v1.5"))
    version = (news_kb.path / "CURRENT").read_text().strip()
    manifest_path = news_kb.path / version / "manifest.json"
    original = manifest_path.read_text()
    try:
        data = json.loads(original)
        data["format_version"] = 0
        manifest_path.write_text(json.dumps(data))
        with pytest.raises(IndexMismatchError, match="older format"):
            KnowledgeBase.open(news_kb.path)
    finally:
        manifest_path.write_text(original)


def test_index_built_per_matrix_keeps_its_query_encoder(tmp_path):
    """Indexes from before the per-channel default hold per-matrix vectors: queries must match them."""
    from rag.documents import load_documents
    from rag.kb import open_or_build

    src = tmp_path / "tea.txt"
    src.write_text("崂山茶\n\n崂山茶产自青岛崂山，2024年产量达到300吨。", encoding="utf-8")
    old = KnowledgeBase.build([src], path=tmp_path / "kb", config=Config(backend="onnx-int8"))
    reopened = KnowledgeBase.open(old.path)
    assert reopened.config.backend.value == reopened.encoder.backend.value == "onnx-int8"
    assert reopened.search("崂山茶产量", k=1)[0].dense_score > 0.8
    rebuilt = open_or_build(old.path, load_documents([src]), Config())
    assert rebuilt.config.backend.value == "onnx-int8pc"
    assert KnowledgeBase.open(old.path).encoder.backend.value == "onnx-int8pc"


def test_interrupted_save_leaves_previous_index_usable(news_kb, monkeypatch, tmp_path):
    kb = KnowledgeBase.open(news_kb.path)
    kb.save(tmp_path / "copy")

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kb.index.dense, "save", disk_full)
    with pytest.raises(StoreWriteError, match="disk is full.*previous version is unchanged"):
        kb.save(tmp_path / "copy")
    reopened = KnowledgeBase.open(tmp_path / "copy")
    assert len(reopened.chunks) == len(news_kb.chunks)
    assert not list((tmp_path / "copy").glob(".v*")) and len(list((tmp_path / "copy").glob("v*"))) == 1


def test_missing_index_folder_says_how_to_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="rag index"):
        KnowledgeBase.open(tmp_path / "none")


def test_update_rereads_changed_files_only_and_drops_deleted_ones(tmp_path, monkeypatch):
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("崂山茶\n\n崂山茶2024年产量达到300吨。", encoding="utf-8")
    (docs / "b.md").write_text("# 青岛啤酒\n\n青岛啤酒节2024年接待游客600万人次。", encoding="utf-8")
    kb = KnowledgeBase.build([docs], path=tmp_path / "kb")
    assert kb.sync([docs]) == {"added": [], "removed": [], "unchanged": ["a.txt", "b.md"], "failed": []}
    (docs / "a.txt").write_text("崂山茶\n\n崂山茶2024年产量达到350吨。", encoding="utf-8")
    (docs / "b.md").unlink()
    (docs / "c.txt").write_text("海水稻\n\n青岛海水稻2024年亩产达到500公斤。", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", str(docs), "--out", str(tmp_path / "kb"), "--update"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "2 read, 1 removed, 0 unchanged" in out.stdout, out.stderr
    again = KnowledgeBase.open(tmp_path / "kb")
    assert set(again.documents) == {"a.txt", "c.txt"}
    assert again.answer("崂山茶2024年产量是多少？").short == "350吨"


def test_the_answer_step_switches_without_touching_the_indexes(news_kb, tmp_path):
    kb = KnowledgeBase.open(news_kb.path)
    reader = kb.composer
    kb.choose_answer_step(None, "int8")  # already so: the loaded reader stays
    assert kb.composer is reader
    kb.choose_answer_step("heuristic")
    assert kb.config.composer.value == "heuristic" and kb.composer is not reader
    assert kb.answer("2024年青岛市进出口达多少亿元？").short == "9076.7亿元"
    assert kb.config.reader_precision.value == "int8" and len(kb.chunks) == len(news_kb.chunks)


def test_a_question_in_the_other_script_is_answered(news_kb, tmp_path):
    # before: 「2024年青島市進出口總值是多少？」 on the Simplified page was "not in the documents"
    assert not news_kb.is_traditional()
    a = news_kb.answer("2024年青島市進出口總值是多少？")
    assert a.short == "9076.7亿元" and a.question == "2024年青島市進出口總值是多少？"
    follow_up = news_kb.answer("總投資多少？", history=["青島有幾個項目入選省綠色低碳高質量發展重點項目？"])
    assert "项目入选" in follow_up.searched and follow_up.short == "1565.5亿元"
    other_year = news_kb.answer("2023年呢？", history=["2024年青島市進出口總值是多少？"])
    assert other_year.searched == "2023年青岛市进出口总值是多少？" and other_year.question == "2023年呢？"
    # the page in Traditional characters, asked in Simplified: the quote is the document's own text
    page = next(CORPUS.glob("*.txt"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / page.name).write_text(to_traditional(page.read_text("utf-8")), "utf-8")
    kb = KnowledgeBase.build([tmp_path / "src"], path=tmp_path / "kb")
    assert kb.is_traditional()
    a = kb.answer("2024年青岛市进出口总值是多少？")
    assert a.short == "9076.7億元"
    cite = a.citations[0]
    assert "進出口" in cite.quote and kb.document(cite.doc_id)[cite.start : cite.end] == cite.quote
