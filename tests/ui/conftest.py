import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(news_kb, tmp_path_factory):
    """The chat app on a free port, over the session's news index, with a temp index root."""
    from rag.ui.app import KnowledgeBases, build_app
    from rag.ui.render import CSS

    kbs = KnowledgeBases(root=tmp_path_factory.mktemp("index_root"), default_path=news_kb.path)
    app = build_app(kbs)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/"
    app.close()
