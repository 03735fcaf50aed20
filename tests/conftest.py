import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session")
def news_kb(tmp_path_factory):
    """The bundled page, indexed once per test session into a temp folder."""
    from rag import KnowledgeBase

    logging.getLogger("jieba").setLevel(logging.WARNING)
    return KnowledgeBase.build([CORPUS], path=tmp_path_factory.mktemp("kb") / "news")
