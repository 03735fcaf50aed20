"""Through the public API and the CLI, as a user would."""

import json
import os
import subprocess
import sys

import pytest

import rag

RAG = [sys.executable, "-m", "rag.cli"]


def test_answer_quotes_the_page_verbatim():
    a = rag.answer("2024年青岛市进出口达多少亿元？")
    assert not a.abstained
    assert a.short == "9076.7亿元"
    first = a.citations[0]
    assert a.short in first.quote
    kb = rag.default_kb()
    for c in a.citations:
        assert kb.document(c.doc_id)[c.start : c.end] == c.quote
    assert "[1]" in a.text and a.short in a.text
    assert json.loads(json.dumps(a.to_dict(), ensure_ascii=False))["short"] == "9076.7亿元"


def test_paraphrased_question_is_answered():
    a = rag.answer("青岛和多少个国家地区做生意？")
    assert a.short == "242个"


def test_question_about_another_city_abstains():
    a = rag.answer("2024年济南市进出口总值是多少？")
    assert a.abstained and a.short is None and not a.citations
    assert "没有" in a.text and a.passages


def test_empty_question_is_a_value_error():
    with pytest.raises(ValueError, match="empty"):
        rag.answer("   ")


def test_a_question_without_words_is_a_clear_error():
    # before: 「？？？」 was read like a question and answered 「项目」 at 10% confidence
    for question in ("？？？", "…… ！", "🙂"):
        with pytest.raises(ValueError, match="has no words"):
            rag.answer(question)
    out = _cli("ask", "？？")
    assert out.returncode == 2 and "has no words" in out.stderr and "Traceback" not in out.stderr


def test_huge_question_is_a_clear_error():
    with pytest.raises(ValueError, match="100000 characters long; ask in at most 2000"):
        rag.answer("青岛进出口" * 20000)
    out = _cli("ask", "青岛进出口" * 1000)
    assert out.returncode == 2 and "at most 2000" in out.stderr and "Traceback" not in out.stderr


def _cli(*args, env: dict | None = None, **kw):
    env = dict(os.environ, PYTHONIOENCODING="utf-8", **(env or {}))
    return subprocess.run(RAG + list(args), capture_output=True, text=True, env=env, timeout=300, **kw)


def test_cli_ask_json_and_text():
    out = _cli("ask", "2024年青岛市进出口达多少亿元？", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["short"] == "9076.7亿元" and data["citations"][0]["n"] == 1
    text = _cli("ask", "对接会什么时候举行？")
    assert "1月16日至17日" in text.stdout


def test_cli_ask_with_the_fp32_reader():
    out = _cli("ask", "2024年青岛市进出口达多少亿元？", "--reader-precision", "fp32", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["short"] == "9076.7亿元"
    wrong = _cli("ask", "2024年青岛市进出口达多少亿元？", "--reader-precision", "fp16")
    assert wrong.returncode == 2 and "int8" in wrong.stderr and "Traceback" not in wrong.stderr
    for command in ("chat", "serve"):  # the chat window and the HTTP API take the same choice
        wrong = _cli(command, "--reader-precision", "fp16")
        assert wrong.returncode == 2 and "int8" in wrong.stderr and "Traceback" not in wrong.stderr


def test_cli_empty_question_exits_2_with_one_line():
    out = _cli("ask", " ")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "empty" in out.stderr


def test_cli_cache_lists_and_prunes_only_old_reader_exports(tmp_path):
    from rag.reader_export import EXPORT_GRAPH, recipe_name, shipped_info

    models = tmp_path / "models"
    current = f"reader-{shipped_info()['sha256'][:16]}"
    kept = [f"{current}-{EXPORT_GRAPH}-{recipe_name('int8')}", f"{current}-{EXPORT_GRAPH}-fp32"]
    kept += ["reader-hub-9957234cb4b3-int8pc", "reader-train"]
    stale = ["reader-178a062e60a04d5f", f"{current}", "reader-aac6391b27f9cccc-int8pc", f"{current}-fp32"]
    for name in kept + stale:
        (models / name).mkdir(parents=True)
        (models / name / "model_qint8.onnx").write_bytes(b"x" * 2**20)
    env = {"RAG_CACHE_DIR": str(tmp_path)}
    listed = _cli("cache", env=env)
    assert listed.returncode == 0 and "4 stale, 4 MB" in listed.stdout
    assert all(name in listed.stdout for name in stale) and not any(name in listed.stdout for name in kept)
    pruned = _cli("cache", "--prune", env=env)
    assert pruned.returncode == 0 and "freed 4 MB" in pruned.stdout
    assert sorted(p.name for p in models.iterdir()) == sorted(kept)
    assert "no stale reader exports" in _cli("cache", env=env).stdout


def test_cli_index_search_and_errors(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.txt").write_bytes("崂山绿茶\n\n崂山绿茶产自青岛崂山区，2024年茶园面积达到3.2万亩。".encode("gbk"))
    (docs / "blob.bin").write_bytes(b"\x00\x01\x02")
    out = _cli("index", str(docs), "--out", str(tmp_path / "kb"))
    assert out.returncode == 0, out.stderr
    assert "blob.bin" in out.stderr
    found = _cli("search", "崂山茶园面积", "--kb", str(tmp_path / "kb"), "-k", "1")
    assert "崂山绿茶" in found.stdout
    answer = _cli("ask", "崂山茶园面积有多少？", "--kb", str(tmp_path / "kb"), "--json")
    assert json.loads(answer.stdout)["short"] == "3.2万亩"
    missing = _cli("index", str(tmp_path / "nope"), "--out", str(tmp_path / "kb2"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    wrong = _cli("ask", "问题", "--kb", str(tmp_path / "nothing"))
    assert wrong.returncode == 2 and "rag index" in wrong.stderr


def test_cli_eval_writes_a_report(tmp_path):
    out = _cli("eval", "--limit", "12", "--mode", "all", "--split", "dev", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "quote@1" in out.stdout
    for suffix in (".md", ".json", ".png"):
        assert list(tmp_path.glob(f"*{suffix}")), suffix
    report = next(tmp_path.glob("*.md")).read_text(encoding="utf-8")
    assert "| hybrid | dense | keyword |" in report


def test_cli_serve_two_workers_share_a_knowledge_base_and_see_updates(tmp_path):
    """`rag serve --workers 2`: an upload through one worker is answered by both, without a restart."""
    import time

    import httpx

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    from chat_server import free_port

    port = free_port()
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index")}
    server = subprocess.Popen([*RAG, "serve", "--port", str(port), "--workers", "2"], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        workers = set()
        for _ in range(600):
            try:
                workers.add(httpx.get(f"{url}/v1/health", timeout=5).json()["worker"])
            except httpx.HTTPError:
                pass
            if len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2
        ask = {"question": "崂山茶园2024年产茶多少？", "kb": "tea"}
        for tons in (321, 654):  # the second upload replaces the file that both workers already opened
            text = f"茶园\n\n崂山茶园2024年产茶{tons}吨。".encode()
            r = httpx.post(f"{url}/v1/knowledge-bases/tea/documents", files={"files": ("tea.txt", text)}, timeout=60)
            assert r.status_code == 200, r.text
            time.sleep(1.5)  # workers look for a new saved version at most once a second
            shorts = {httpx.post(f"{url}/v1/answer", json=ask, timeout=60).json()["short"] for _ in range(12)}
            assert shorts == {f"{tons}吨"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cli_serve_refuses_an_open_address_without_a_key():
    out = _cli("serve", "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 2 and "needs an API key" in out.stderr
