import logging

import pytest

from rag.documents import DocumentError, load_documents, read_path


def test_gbk_utf8_bom_and_utf8_files_decode(tmp_path):
    (tmp_path / "gbk.txt").write_bytes("青岛港货物吞吐量再创新高。".encode("gbk"))
    (tmp_path / "bom.txt").write_bytes("\ufeff崂山风景区游客增长。".encode("utf-8"))
    (tmp_path / "plain.md").write_text("# 标题\n\n正文内容。", encoding="utf-8")
    docs = {d.doc_id: d.text for d in load_documents([tmp_path])}
    assert docs["gbk.txt"] == "青岛港货物吞吐量再创新高。"
    assert docs["bom.txt"] == "崂山风景区游客增长。"
    assert docs["plain.md"].startswith("# 标题")


def test_binary_and_unsupported_files_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "ok.txt").write_text("有效内容。", encoding="utf-8")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\x00\x00\x01\x02" * 50)
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    with caplog.at_level(logging.WARNING):
        docs = load_documents([tmp_path])
    assert [d.doc_id for d in docs] == ["ok.txt"]
    assert "image.txt" in caplog.text and "sheet.xlsx" in caplog.text


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_documents([tmp_path / "nope"])


def test_jsonl_corpus_and_malformed_line_number(tmp_path):
    good = tmp_path / "c.jsonl"
    good.write_text('{"id": "a", "title": "T", "text": "甲。"}\n{"_id": "b", "text": "乙。"}\n', encoding="utf-8")
    assert [(d.doc_id, d.title) for d in load_documents([good])] == [("a", "T"), ("b", "")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "甲"}\n{"id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(DocumentError, match="line 2"):
        load_documents([bad])


def test_undecodable_bytes_name_the_file(tmp_path):
    from rag.documents import decode_bytes

    with pytest.raises(DocumentError, match="weird.txt"):
        decode_bytes(b"\x81\x30" * 3 + b"\x1b\x1c\x1d\x1e" * 20, "weird.txt")


def test_a_broken_utf16_file_is_named_and_the_good_ones_still_load(tmp_path):
    (tmp_path / "good.txt").write_text("崂山茶产自青岛。", encoding="utf-8")
    (tmp_path / "broken.txt").write_bytes("青岛".encode("utf-16") + b"\x00\xd8")  # a lone surrogate half
    with pytest.raises(DocumentError, match="broken.txt: a UTF-16 file with a broken character"):
        read_path(tmp_path / "broken.txt")
    assert [d.doc_id for d in load_documents([tmp_path])] == ["good.txt"]
