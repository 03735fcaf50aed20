"""A transformers question-answering folder (as a hub reader arrives) goes through the same export."""

import shutil

from rag import Config, KnowledgeBase
from rag.offline_model import ensure_model
from rag.reader_export import WEIGHTS_FILE, assemble, ensure_reader


def test_a_transformers_qa_folder_serves_as_reader(tmp_path, monkeypatch, news_kb: KnowledgeBase):
    monkeypatch.setattr("rag.reader_export.models_root", lambda: tmp_path / "cache")  # exports land in tmp
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = ensure_model()
    folder = tmp_path / "qa-model"
    assemble(base, WEIGHTS_FILE).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(base / name, folder / name)
    exported = ensure_reader(str(folder))
    assert (exported / "model_qint8.onnx").exists() and (exported / "tokenizer.json").exists()
    kb = KnowledgeBase.open(news_kb.path, Config(reader=str(folder)))
    a = kb.answer("2024年青岛市进出口达多少亿元？")
    assert a.short == "9076.7亿元"
    assert kb.document(a.citations[0].doc_id)[a.citations[0].start : a.citations[0].end] == a.citations[0].quote


def test_an_unknown_hub_reader_is_a_clear_error(tmp_path, monkeypatch):
    import pytest

    from rag.reader_export import ReaderWeightsError

    monkeypatch.setattr("rag.reader_export.models_root", lambda: tmp_path / "cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReaderWeightsError, match="could not load reader"):
        ensure_reader("no-such-org/no-such-reader")
