from rag import paths


def test_a_checkout_keeps_the_design_folders():
    assert paths.CHECKOUT is not None
    assert paths.bundled_corpus() == paths.CHECKOUT / "corpus" and any(paths.bundled_corpus().glob("*.txt"))
    assert paths.bundled_qa().is_file()


def test_environment_overrides_where_knowledge_bases_and_models_live(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "kbs"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert paths.index_root() == tmp_path / "kbs" and paths.cache_root() == tmp_path / "cache"


def test_outside_a_checkout_knowledge_bases_go_to_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "CHECKOUT", None)
    assert paths.index_root() == tmp_path / "data" / "rag" / "index"
    assert paths.bundled_corpus() == paths.PACKAGE / "corpus"
