import json

import pytest

from rag import KnowledgeBase, store


def test_a_save_is_a_new_version_and_the_old_one_goes(news_kb, tmp_path):
    root = tmp_path / "kb"
    kb = KnowledgeBase.open(news_kb.path)  # a copy: save() moves a knowledge base to where it saves
    kb.save(root)
    first = store.current_version(root)
    kb.save(root)
    second = store.current_version(root)
    assert first != second and not (root / first).exists() and (root / second / "manifest.json").exists()
    loaded = store.load(root)
    assert loaded.chunks.keys() == news_kb.chunks.keys() and loaded.documents.keys() == news_kb.documents.keys()
    assert store.read_manifest(root)["chunks"] == len(news_kb.chunks)


def test_open_builds_from_what_is_stored_not_an_empty_kb(news_kb):
    kb = KnowledgeBase.open(news_kb.path)
    assert kb.chunk(next(iter(news_kb.chunks.values())).chunk_id) is not None
    assert kb.build_seconds == store.read_manifest(news_kb.path)["last_build_seconds"]


def test_an_older_format_is_a_clear_error(news_kb, tmp_path):
    root = tmp_path / "old"
    KnowledgeBase.open(news_kb.path).save(root)
    manifest = root / store.current_version(root) / "manifest.json"
    data = json.loads(manifest.read_text("utf-8"))
    data["format_version"] = 0
    manifest.write_text(json.dumps(data), "utf-8")
    with pytest.raises(store.IndexMismatchError, match="Rebuild"):
        store.load(root)
