"""Encoding on a local Ray: the same vectors as the plain encoder, and a crashed run resumes."""

import numpy as np
import pytest

from rag import Config, KnowledgeBase
from rag.chunking import Chunker
from rag.documents import load_documents
from rag.embedding import shared_encoder
from rag.ray_encoding import RayChunkEncoder

ray = pytest.importorskip("ray")

from tests.conftest import CORPUS  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    options = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        ray.init(**options)
    except Exception:  # Ray's own start-up (raylet registering in 30 s) can time out on a loaded machine
        ray.shutdown()
        ray.init(**options)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def chunks():
    chunker = Chunker(Config().chunk_max_chars, Config().chunk_min_chars)
    found = [c for d in load_documents([CORPUS]) for c in chunker.split(d)]
    return [c.indexed_text() for c in found], [c.indexed_sentence_spans() for c in found]


def _cosines(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _ray_encoder(spool, workers=2):
    c = Config()
    encoder = shared_encoder(c.model, c.device, c.max_seq_length, c.backend)
    return RayChunkEncoder(
        None, c.model, c.device, c.max_seq_length, c.backend, encoder.dim, spool, workers, batch_size=16
    )


def test_same_vectors_as_the_plain_encoder(local_ray, chunks, tmp_path):
    texts, spans = chunks
    c = Config()
    plain = shared_encoder(c.model, c.device, c.max_seq_length, c.backend).encode_chunks(texts, spans)
    on_ray = _ray_encoder(tmp_path / "spool").encode_chunks(texts, spans)
    # int8 activations are quantised per batch, so a text's vector moves a little with its batch-mates
    # (the plain encoder's too): equal up to that
    assert _cosines(on_ray.vectors, plain.vectors).min() > 0.99
    assert len(on_ray.sentence_vectors) == len(texts)
    for a, b in zip(on_ray.sentence_vectors, plain.sentence_vectors):
        assert a.shape == b.shape and _cosines(a, b).min() > 0.98


def test_a_crashed_run_resumes_with_what_is_left(local_ray, chunks, tmp_path, monkeypatch):
    texts, spans = chunks
    encoder = _ray_encoder(tmp_path / "spool")
    real_run = RayChunkEncoder._run

    def crash_after_first_batch(self, rows, progress):
        for batch in real_run(self, rows, progress):
            yield batch
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(RayChunkEncoder, "_run", crash_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        encoder.encode_chunks(texts, spans)
    written = sorted((tmp_path / "spool").glob("part-*.npz"))
    assert written  # the first batch reached the spool before the crash
    sent = []

    def counting_run(self, rows, progress):
        sent.extend(r["i"] for r in rows)
        yield from real_run(self, rows, progress)

    monkeypatch.setattr(RayChunkEncoder, "_run", counting_run)
    resumed = _ray_encoder(tmp_path / "spool").encode_chunks(texts, spans)
    assert 0 < len(sent) < len(texts)  # only what the first run had not written
    fresh = _ray_encoder(tmp_path / "other").encode_chunks(texts, spans)
    assert _cosines(resumed.vectors, fresh.vectors).min() > 0.99


def test_knowledge_base_built_on_ray_answers(local_ray, tmp_path):
    spool = tmp_path / "kb.encoding"
    kb = KnowledgeBase.build([CORPUS], path=tmp_path / "kb", chunk_encoder=_ray_encoder(spool))
    assert kb.answer("2024年青岛市进出口总值是多少？").short == "9076.7亿元"
    assert spool.exists()  # kept until the caller says the knowledge base is saved
