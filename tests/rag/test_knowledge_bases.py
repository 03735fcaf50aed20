"""A server's knowledge bases (rag/knowledge_bases.py): versions saved by another process are picked up."""

from rag.knowledge_bases import KnowledgeBases

QUESTION = "崂山茶园2024年产茶多少？"


def _upload(kbs: KnowledgeBases, folder, tons: int) -> None:
    path = folder / "tea.txt"
    path.write_text(f"茶园\n\n崂山茶园2024年产茶{tons}吨。", encoding="utf-8")
    kbs.upload("tea", [str(path)])


def test_another_process_s_save_is_picked_up_and_a_damaged_one_is_not(tmp_path, monkeypatch):
    import rag.knowledge_bases

    monkeypatch.setattr(rag.knowledge_bases, "REFRESH_SECONDS", 0.0)
    writer, server = KnowledgeBases(root=tmp_path / "index"), KnowledgeBases(root=tmp_path / "index")
    _upload(writer, tmp_path, 321)
    assert server.get("tea").answer(QUESTION).short == "321吨"
    _upload(writer, tmp_path, 654)  # as another worker or `rag index --add` would
    assert server.get("tea").answer(QUESTION).short == "654吨"
    _upload(writer, tmp_path, 987)
    root = tmp_path / "index" / "tea"
    (root / (root / "CURRENT").read_text() / "dense.faiss").write_bytes(b"garbage")
    assert server.get("tea").answer(QUESTION).short == "654吨"  # keeps answering from what it has
    (root / (root / "CURRENT").read_text() / "manifest.json").write_text("[]")
    listed = KnowledgeBases(root=tmp_path / "index").describe("tea")  # listed with its damage, not raised
    assert listed["documents"] is None and "manifest" in listed["error"]


def test_every_knowledge_base_served_uses_the_configured_answer_step(tmp_path, news_kb, monkeypatch):
    import json

    from rag import Config
    from rag.api import app_from_environment
    from rag.composer import AnswerComposer
    from rag.reader_composer import ReaderComposer

    kbs = KnowledgeBases(root=tmp_path / "index", config=Config(composer="heuristic"))
    _upload(kbs, tmp_path, 321)  # a new one
    assert isinstance(kbs.get("tea").composer, AnswerComposer)
    assert isinstance(KnowledgeBases(root=tmp_path / "index").get("tea").composer, ReaderComposer)  # reopened
    settings = {"default_path": str(news_kb.path), "answer_step": {"composer": None, "reader_precision": "fp32"}}
    monkeypatch.setenv("RAG_SERVE", json.dumps(settings))  # as `rag serve --reader-precision fp32` sets it
    served = app_from_environment().state.knowledge_bases.get("default")
    assert served.config.reader_precision.value == "fp32" and served.config.composer.value == "reader"
