import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from chat_server import free_port


@contextlib.contextmanager
def chat_app(default_path: Path, root: Path) -> Iterator[str]:
    """The chat app on a free port with `default_path` as its first knowledge base; yields its URL."""
    from rag.knowledge_bases import KnowledgeBases
    from rag.ui.app import build_app
    from rag.ui.render import CSS

    app = build_app(KnowledgeBases(root=root, default_path=default_path))
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="session")
def app_url(news_kb, tmp_path_factory):
    """The chat app over the session's news index, with a temp index root."""
    with chat_app(news_kb.path, tmp_path_factory.mktemp("index_root")) as url:
        yield url
