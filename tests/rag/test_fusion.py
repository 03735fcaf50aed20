import numpy as np
import pytest

from rag import Config
from rag.config import FusionMethod
from rag.fusion import fuse, minmax, ranks


def test_minmax_keeps_score_gaps_and_rrf_only_order():
    dense = np.array([0.90, 0.89, 0.50])
    keyword = np.array([0.0, 10.0, 9.0])
    mm = fuse(dense, keyword, FusionMethod.MINMAX, 0.5)
    rrf = fuse(dense, keyword, FusionMethod.RRF, 1.0)
    assert np.argmax(mm) == 1  # near-top dense and best keyword
    assert list(ranks(dense)) == [1, 2, 3] and np.argmax(rrf) == 1
    assert minmax(np.array([3.0, 3.0])).tolist() == [1.0, 1.0]


def test_fusion_is_a_config_choice_with_a_clear_error():
    assert Config(fusion="rrf").fusion is FusionMethod.RRF
    with pytest.raises(ValueError, match="minmax, rrf"):
        Config(fusion="borda")


def test_both_fusions_rank_the_right_article(news_kb):
    saved = news_kb.config
    try:
        for method in FusionMethod:
            news_kb.config = saved.replace(fusion=method)
            assert "鳎鱼" in news_kb.search("鳎鱼养殖项目用了多久出鱼", k=1)[0].title
    finally:
        news_kb.config = saved
