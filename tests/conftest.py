import logging
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session", autouse=True)
def index_root_in_tmp(tmp_path_factory):
    """Knowledge bases built by the tests (the default one too, and those of CLI subprocesses) go to a
    temp folder, never the checkout's index/."""
    saved = os.environ.get("RAG_INDEX_DIR")
    os.environ["RAG_INDEX_DIR"] = str(tmp_path_factory.mktemp("index"))
    yield
    if saved is None:
        os.environ.pop("RAG_INDEX_DIR", None)
    else:
        os.environ["RAG_INDEX_DIR"] = saved


@pytest.fixture(scope="session")
def news_kb(tmp_path_factory):
    """The bundled page, indexed once per test session into a temp folder."""
    from rag import KnowledgeBase

    logging.getLogger("jieba").setLevel(logging.WARNING)
    return KnowledgeBase.build([CORPUS], path=tmp_path_factory.mktemp("kb") / "news")
