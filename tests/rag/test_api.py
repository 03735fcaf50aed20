"""`rag serve` through real clients: httpx for REST, the official `openai` package for chat completions."""

import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from chat_server import free_port

KEY = "test-key"
QUESTION, SHORT = "2024年青岛市进出口达多少亿元？", "9076.7亿元"


@pytest.fixture(scope="module")
def base(news_kb, tmp_path_factory):
    """The API (with the chat window mounted) on a free port over the session's news index."""
    import uvicorn

    from rag import Config
    from rag.api import create_app
    from rag.knowledge_bases import KnowledgeBases

    kbs = KnowledgeBases(tmp_path_factory.mktemp("api_root"), news_kb.path, Config(max_upload_mb=1))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(kbs, {KEY}), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def http(base):
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def openai_client(base):
    from openai import OpenAI

    return OpenAI(base_url=f"{base}/v1", api_key=KEY)


def test_answer_quotes_verbatim_with_offsets(http, news_kb):
    r = http.post("/v1/answer", json={"question": QUESTION})
    assert r.status_code == 200
    a = r.json()
    c = a["citations"][0]
    assert a["short"] == SHORT and news_kb.document(c["doc_id"])[c["start"] : c["end"]] == c["quote"]


def test_a_key_is_required_and_errors_are_json_with_a_message(base, http):
    r = httpx.post(f"{base}/v1/answer", json={"question": QUESTION})
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    assert httpx.get(f"{base}/v1/health").json()["status"] == "ok"  # health needs no key
    r = http.post("/v1/answer", json={"question": QUESTION, "kb": "nowhere"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "knowledge_base_not_found"
    r = http.post("/v1/answer", json={"question": "  "})
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]
    r = http.post("/v1/search", json={"question": QUESTION, "k": -5})
    assert r.status_code == 422 and "k" in r.json()["error"]["message"]
    r = http.post("/v1/answer", json={"question": "问" * 2_000_000})
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]


def test_search_and_knowledge_bases(http):
    hits = http.post("/v1/search", json={"question": "鳎鱼出鱼数量", "k": 3}).json()["data"]
    assert len(hits) == 3 and hits[0]["dense_score"] is not None
    kbs = http.get("/v1/knowledge-bases").json()["data"]
    assert kbs[0]["name"] == "default" and kbs[0]["documents"] >= 1


def test_openai_client_plain_and_streaming(openai_client, news_kb):
    messages = [{"role": "user", "content": QUESTION}]
    reply = openai_client.chat.completions.create(model="default", messages=messages)
    text = reply.choices[0].message.content
    assert SHORT in text and "[1]" in text and reply.choices[0].finish_reason == "stop"
    c = reply.model_extra["citations"][0]
    assert news_kb.document(c["doc_id"])[c["start"] : c["end"]] == c["quote"]
    chunks = list(openai_client.chat.completions.create(model="default", messages=messages, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == text
    assert chunks[-1].model_extra["citations"] == reply.model_extra["citations"]
    assert [m.id for m in openai_client.models.list()][0] == "default"


def test_openai_follow_up_and_abstention(openai_client):
    follow_up = openai_client.chat.completions.create(
        model="default",
        messages=[
            {"role": "user", "content": "青岛有几个项目入选省绿色低碳高质量发展重点项目？"},
            {"role": "assistant", "content": "……"},
            {"role": "user", "content": "总投资多少？"},
        ],
    )
    assert follow_up.model_extra["short_answer"] == "1565.5亿元"
    none = openai_client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "2024年济南市进出口总值是多少？"}]
    )
    assert none.model_extra["abstained"] and "没有找到" in none.choices[0].message.content


def test_openai_errors_reach_the_client(openai_client):
    import openai

    with pytest.raises(openai.NotFoundError, match="nowhere"):
        openai_client.chat.completions.create(model="nowhere", messages=[{"role": "user", "content": QUESTION}])


def test_upload_ask_and_delete_a_document(http, tmp_path):
    tea = "崂山绿茶\n\n崂山绿茶产自青岛崂山区，2024年茶园面积达到3.2万亩。".encode()
    files = [
        ("files", ("tea.txt", tea, "text/plain")),
        ("files", ("big.txt", b"x" * (2 * 2**20), "text/plain")),  # over this server's 1 MB limit
        ("files", ("photo.txt", b"\x89PNG\x00\x00" * 100, "text/plain")),
    ]
    r = http.post("/v1/knowledge-bases/tea/documents", files=files)
    body = r.json()
    assert r.status_code == 200 and body["added"] == ["tea.txt"] and body["documents"] == 1
    assert any("big.txt" in f and "1 MB" in f for f in body["failed"]) and any("photo.txt" in f for f in body["failed"])
    a = http.post("/v1/answer", json={"question": "崂山茶园面积多少？", "kb": "tea"}).json()
    assert a["short"] == "3.2万亩"
    assert http.delete("/v1/knowledge-bases/tea/documents/nothing.txt").status_code == 404
    assert http.delete("/v1/knowledge-bases/default/documents/x").status_code == 403
    r = http.delete("/v1/knowledge-bases/tea/documents/tea.txt")
    assert r.status_code == 200 and r.json()["documents"] == 0
    assert http.post("/v1/answer", json={"question": "崂山茶园面积多少？", "kb": "tea"}).json()["abstained"]


def test_the_chat_window_is_served_by_the_same_server(base):
    assert httpx.get(f"{base}/", follow_redirects=True).status_code == 200
    assert httpx.get(f"{base}/docs").status_code == 200


def test_the_chat_window_upload_is_not_held_to_the_api_json_limit(base, tmp_path):
    """The mounted chat window's own upload route takes bodies over 1 MB (after its login, a key)."""
    from gradio_client import Client, handle_file

    files = [tmp_path / "tea.txt", tmp_path / "a.bin", tmp_path / "b.bin"]
    files[0].write_text("崂山绿茶\n\n崂山绿茶2024年茶园面积达到3.2万亩。", encoding="utf-8")
    for f in files[1:]:
        f.write_bytes(b"\x00" * 700_000)  # 1.4 MB in all; each file under this server's 1 MB limit
    client = Client(f"{base}/", auth=("anyone", KEY), verbose=False)
    _, status = client.predict([handle_file(str(f)) for f in files], "window", api_name="/upload")
    assert "tea.txt" in status and "a.bin" in status  # indexed, and the unreadable ones named
