import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from chat_server import free_port


@pytest.fixture(scope="session")
def app_url(news_kb, tmp_path_factory):
    """The chat app on a free port, over the session's news index, with a temp index root."""
    from rag.knowledge_bases import KnowledgeBases
    from rag.ui.app import build_app
    from rag.ui.render import CSS

    kbs = KnowledgeBases(root=tmp_path_factory.mktemp("index_root"), default_path=news_kb.path)
    app = build_app(kbs)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/"
    app.close()
