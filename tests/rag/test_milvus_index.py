"""The milvus store: same passages and answers as the local one, versions, crashes, errors.

Runs on milvus-lite (a local file, the same `MilvusClient` API); with `RAG_MILVUS_URI` set
(e.g. http://localhost:19530, see docs/scale.md) the server tests run against a real Milvus.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rag import Config, KnowledgeBase, store
from rag.documents import load_documents
from rag.evaluation import load_dataset
from rag.milvus_index import MilvusStoreError, close_clients

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from tests.conftest import CORPUS


@pytest.fixture(scope="module", autouse=True)
def milvus_lite_stopped_afterwards():
    """milvus-lite serves each file from gRPC threads in this process; stop them when done, so later
    tests that fork (Ray starting its raylet) do not fork beside them."""
    yield
    from milvus_lite.server_manager import server_manager_instance

    close_clients()
    server_manager_instance.release_all()


@pytest.fixture(scope="module")
def milvus_kb(tmp_path_factory):
    return KnowledgeBase.build([CORPUS], path=tmp_path_factory.mktemp("milvus") / "news", config=Config(store="milvus"))


def _questions():
    return [it.question for it in load_dataset("qingdao").split("dev")]


def test_same_top_passage_and_answer_as_local(news_kb, milvus_kb):
    questions = _questions()
    same = sum(news_kb.search(q, k=5)[0].chunk_id == milvus_kb.search(q, k=5)[0].chunk_id for q in questions)
    assert same / len(questions) >= 0.99
    for q in questions[:5]:
        local, milvus = news_kb.answer(q), milvus_kb.answer(q)
        assert (milvus.short, milvus.abstained) == (local.short, local.abstained)
        assert [(c.doc_id, c.start, c.end) for c in milvus.citations] == [
            (c.doc_id, c.start, c.end) for c in local.citations
        ]


def test_scores_match_local_bm25_and_cosine(news_kb, milvus_kb):
    q = "2024年青岛市进出口总值是多少？"
    local = {h.chunk_id: h for h in news_kb.search(q, k=10)}
    for hit in milvus_kb.search(q, k=10):
        if hit.chunk_id in local:
            assert hit.dense_score == pytest.approx(local[hit.chunk_id].dense_score, abs=1e-4)
            assert hit.keyword_score == pytest.approx(local[hit.chunk_id].keyword_score, rel=0.02)


def test_reopened_and_every_mode(milvus_kb):
    kb = KnowledgeBase.open(milvus_kb.path)
    assert kb.config.store == "milvus" and kb.index.size == len(kb.chunks)
    for mode in ("hybrid", "dense", "keyword"):
        hits = kb.search("崂山区的GDP", k=3, mode=mode)
        assert hits and all(h.chunk_id in {c.chunk_id for c in kb.chunks.values()} for h in hits)


def test_add_remove_keeps_old_version_answering(tmp_path):
    (tmp_path / "a.txt").write_text("青岛港2024年集装箱吞吐量达到3087万标准箱，位居全球第四。", "utf-8")
    (tmp_path / "b.txt").write_text("崂山茶是青岛的特产，以豆香浓郁著称，春茶品质最好。", "utf-8")
    kb = KnowledgeBase.build([tmp_path / "a.txt"], path=tmp_path / "kb", config=Config(store="milvus"))
    old = KnowledgeBase.open(tmp_path / "kb")
    first_rows = set(kb.chunks)
    kb.add([tmp_path / "b.txt"])
    assert kb.search("崂山茶的特点", k=1)[0].doc_id == "b.txt"
    # a reader still on the old version never sees rows it does not hold
    assert {h.doc_id for h in old.search("崂山茶的特点", k=5)} == {"a.txt"}
    kb.remove(["a.txt"])
    assert {h.doc_id for h in kb.search("集装箱吞吐量", k=5)} == {"b.txt"}
    assert kb.index.stored_rows() == set(kb.chunks)  # removed rows deleted once the switch was made
    assert not first_rows & set(kb.chunks)  # row ids are never reused


def test_rows_of_a_writer_that_died_are_dropped(tmp_path):
    (tmp_path / "a.txt").write_text("青岛地铁6号线一期工程于2024年12月开通运营，全长30.8公里。", "utf-8")
    (tmp_path / "b.txt").write_text("胶州湾隧道全长7.8公里，是连接青岛主城与黄岛的交通要道。", "utf-8")
    kb = KnowledgeBase.build([tmp_path / "a.txt"], path=tmp_path / "kb", config=Config(store="milvus"))
    dying = KnowledgeBase.open(tmp_path / "kb")
    dying.add_documents(load_documents([tmp_path / "b.txt"]))
    assert dying.index.size > kb.index.size  # inserted into Milvus, never saved: the writer "died"
    kb.add([tmp_path / "b.txt"])
    assert kb.index.stored_rows() == set(kb.chunks)


def test_rebuild_drops_the_old_collection(tmp_path):
    (tmp_path / "a.txt").write_text("青岛啤酒节每年八月举办，2024年吸引游客超过600万人次。", "utf-8")
    kb = KnowledgeBase.build([tmp_path / "a.txt"], path=tmp_path / "kb", config=Config(store="milvus"))
    old = kb.index.collection
    kb2 = KnowledgeBase.build([tmp_path / "a.txt"], path=tmp_path / "kb", config=Config(store="milvus"))
    assert kb2.index.collection != old
    assert not kb2.index.client.has_collection(old)


def test_milvus_own_bm25_keyword_search(tmp_path):
    kb = KnowledgeBase.build([CORPUS], path=tmp_path / "kb", config=Config(store="milvus", milvus_keyword="bm25"))
    hits = kb.search("2024年青岛市进出口总值", k=3, mode="keyword")
    assert hits and hits[0].keyword_score > 0 and "9076.7" in " ".join(h.text for h in hits)


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(MilvusStoreError, match="cannot reach Milvus at http://127.0.0.1:9"):
        KnowledgeBase.build([CORPUS], path=tmp_path / "kb", config=Config(store="milvus", uri="http://127.0.0.1:9"))


def test_missing_collection_is_a_clear_error(tmp_path, milvus_kb):
    kb = KnowledgeBase.build([CORPUS], path=tmp_path / "kb", config=Config(store="milvus"))
    assert store.check(tmp_path / "kb") == []
    kb.index.client.delete(kb.index.collection, filter=f"row == {min(kb.chunks)}")
    assert "lacks 1 of the" in " ".join(store.check(tmp_path / "kb"))
    kb.index.drop()
    with pytest.raises(MilvusStoreError, match="no collection"):
        KnowledgeBase.open(tmp_path / "kb")


def test_garbled_store_record_names_the_manifest(tmp_path, milvus_kb):
    folder = tmp_path / "news"
    shutil.copytree(milvus_kb.path, folder)
    manifest = folder / store.current_version(folder) / "manifest.json"
    record = json.loads(manifest.read_text("utf-8"))
    del record["store"]["collection"]
    manifest.write_text(json.dumps(record), "utf-8")
    with pytest.raises(store.IndexDamagedError, match="manifest.json is damaged"):
        store.load(folder)


def test_cli_index_and_ask_on_milvus(tmp_path):
    rag = [sys.executable, "-m", "rag.cli"]
    out = subprocess.run(
        [*rag, "index", str(CORPUS), "--out", str(tmp_path / "kb"), "--store", "milvus"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "kb.milvus.db").exists()
    ask = subprocess.run(
        [*rag, "ask", "2024年青岛市进出口总值是多少？", "--kb", str(tmp_path / "kb"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    assert "9076.7" in ask.stdout


@pytest.mark.skipif(
    not os.environ.get("RAG_MILVUS_URI"), reason="set RAG_MILVUS_URI=http://host:19530 to test a server"
)
def test_server_matches_local(news_kb, tmp_path):
    kb = KnowledgeBase.build(
        [CORPUS], path=tmp_path / "kb", config=Config(store="milvus", uri=os.environ["RAG_MILVUS_URI"])
    )
    try:
        questions = _questions()
        same = sum(news_kb.search(q, k=5)[0].chunk_id == kb.search(q, k=5)[0].chunk_id for q in questions)
        assert same / len(questions) >= 0.99
    finally:
        kb.index.drop()


def test_vectors_round_trip(milvus_kb, news_kb):
    rows = np.array(sorted(milvus_kb.chunks))[:5]
    local_row_of = {c.chunk_id: r for r, c in news_kb.chunks.items()}
    local_rows = np.array([local_row_of[milvus_kb.chunks[int(r)].chunk_id] for r in rows])
    np.testing.assert_allclose(milvus_kb.index.dense.vectors(rows), news_kb.index.dense.vectors(local_rows), atol=1e-6)


def test_fused_in_milvus(milvus_kb):
    kb = KnowledgeBase.open(milvus_kb.path, Config(fuse_in_milvus=True, fusion="rrf"))
    hits = kb.search("2024年青岛市进出口总值是多少？", k=3)
    assert len(hits) == 3 and "9076.7" in hits[0].text and hits[0].score > hits[-1].score


def test_copy_into_milvus_and_back_without_encoding(news_kb, tmp_path, monkeypatch):
    def no_encoding(*args, **kwargs):
        raise AssertionError("a copy must not encode")

    monkeypatch.setattr(news_kb.encoder, "encode_chunks", no_encoding)
    copied = news_kb.copy(tmp_path / "m", Config(store="milvus"))
    back = KnowledgeBase.open(tmp_path / "m").copy(tmp_path / "local", Config(store="local"))
    q = "崂山区2024年地区生产总值是多少？"
    expected = [h.chunk_id for h in news_kb.search(q, k=5)]
    assert [h.chunk_id for h in copied.search(q, k=5)] == expected
    assert [h.chunk_id for h in back.search(q, k=5)] == expected


def test_api_says_when_milvus_is_gone(tmp_path):
    from fastapi.testclient import TestClient

    from rag.api import create_app
    from rag.knowledge_bases import KnowledgeBases

    kb = KnowledgeBase.build([CORPUS], path=tmp_path / "kb", config=Config(store="milvus"))
    client = TestClient(create_app(KnowledgeBases(tmp_path / "root", kb.path), chat_window=False))
    question = {"question": "2024年青岛市进出口总值是多少？"}
    assert client.post("/v1/answer", json=question).json()["short"] == "9076.7亿元"
    kb.index.drop()  # the server lost the collection (or is down): no silent "not in the documents"
    r = client.post("/v1/answer", json=question)
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
    assert "Milvus" in r.json()["error"]["message"]
