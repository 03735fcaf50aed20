"""The local store behind the `ChunkIndex` protocol: rows in, the same rows found after a save."""

import numpy as np

from rag import Config
from rag.chunk_index import LocalIndex, empty_index, load_index
from rag.retriever import HybridRetriever


def _vectors(n: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_rows_added_removed_and_found_after_reload(tmp_path):
    config = Config()
    index = empty_index(8, config, None)
    assert isinstance(index, LocalIndex) and index.size == 0
    vectors = _vectors(4)
    rows = np.array([10, 11, 12, 13], np.int64)
    tokens = {10: ["青岛", "港口"], 11: ["出口", "增长"], 12: ["进口", "下降"], 13: ["青岛", "出口"]}
    index.apply(rows, vectors, [], tokens, np.zeros(0, np.int64))
    index.apply(np.zeros(0, np.int64), vectors[:0], [], {r: tokens[r] for r in (10, 11, 13)}, np.array([12]))
    assert index.size == 3

    found, _ = index.dense.search(vectors[1:2], 1)
    assert found.ravel().tolist() == [11]
    top, _, _ = index.keyword.search(["出口", "青岛"], 1)
    assert top.tolist() == [13]

    entry = index.save(tmp_path)
    reopened = load_index(tmp_path, entry, np.array([10, 11, 13], np.int64), {}, config)
    assert reopened.size == 3
    assert sorted(reopened.keyword.search(["出口"], 3)[0].tolist()) == [11, 13]
    assert len(reopened.keyword.search(["进口"], 3)[0]) == 0  # only the removed row had it
    assert isinstance(reopened.retriever(), HybridRetriever)
