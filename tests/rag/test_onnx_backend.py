import numpy as np

from rag.embedding import Encoder

TEXTS = ["青岛构建创新型产业体系。重点突破40个细分赛道。", "2024年青岛市进出口达9076.7亿元，同比增长3.6%。"]
SPANS = [[(0, 12), (12, 24)], [(0, 27)]]


def test_onnx_matches_sentence_transformers_and_int8_stays_close():
    torch_enc = Encoder("default", backend="torch")
    ref_q = torch_enc.encode_queries(["青岛进出口总值是多少？"])
    ref = torch_enc.encode_chunks(TEXTS, SPANS)
    # per-channel int8 (the default) sits much closer to fp32 than per-matrix (0.997 vs 0.989 here)
    for backend, floor in (("onnx", 0.9999), ("onnx-int8pc", 0.995), ("onnx-int8", 0.97)):
        enc = Encoder("default", backend=backend)
        assert enc.dim == 384
        assert float((enc.encode_queries(["青岛进出口总值是多少？"]) * ref_q).sum()) >= floor
        got = enc.encode_chunks(TEXTS, SPANS)
        assert np.min((got.vectors * ref.vectors).sum(1)) >= floor
        assert [s.shape for s in got.sentence_vectors] == [(2, 384), (1, 384)]


def test_unknown_backend_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="onnx-int8"):
        Encoder("default", backend="tensorrt")
