import numpy as np
import pytest

from rag.dense import DenseIndex, choose_kind


def _data(n=3000, d=32, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, d)).astype(np.float32)
    return np.arange(n), v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "hnsw"])
def test_kinds_find_neighbours_remove_and_reload(kind, tmp_path):
    ids, v = _data()
    index = DenseIndex.build(v.shape[1], ids, v, kind, nprobe=64)
    assert index.kind == kind and index.size == len(ids)
    exact = np.argsort(-(v @ v[7]))[:10]
    found, _ = index.search(v[7], 10)
    assert found[0] == 7 and len(set(found) & set(exact)) >= 8
    index.remove(np.array([7]))
    assert 7 not in index.search(v[7], 10)[0] and index.size == len(ids) - 1
    index.save(tmp_path / "d.faiss")
    again = DenseIndex.load(tmp_path / "d.faiss", nprobe=64)
    assert again.kind == kind and again.size == index.size


def test_auto_kind_by_size():
    assert choose_kind("auto", 10) == "flat"
    assert choose_kind("auto", 2_000_000) == "ivf-sq8"
    with pytest.raises(ValueError, match="flat"):
        choose_kind("lsh", 10)
