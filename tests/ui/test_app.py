"""The chat app through gradio_client, as a program would use it."""

import pytest
from gradio_client import Client, handle_file


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_answer_endpoint_returns_the_answer_json(client):
    r = client.predict("2024年青岛市进出口达多少亿元？", "default", [], api_name="/answer")
    assert r["short"] == "9076.7亿元" and not r["abstained"]
    assert r["citations"][0]["n"] == 1 and "9076.7亿元" in r["citations"][0]["quote"]


def test_follow_up_through_the_endpoint(client):
    r = client.predict(
        "总投资多少？", "default", ["青岛有几个项目入选省绿色低碳高质量发展重点项目？"], api_name="/answer"
    )
    assert r["short"] == "1565.5亿元" and "项目入选" in r["searched"]


def test_abstention_endpoint(client):
    r = client.predict("2024年济南市进出口总值是多少？", "default", [], api_name="/answer")
    assert r["abstained"] and not r["citations"] and r["passages"]


def test_search_endpoint_has_all_scores(client):
    hits = client.predict("鳎鱼出鱼数量", "default", 3, "hybrid", api_name="/search")
    assert len(hits) == 3 and hits[0]["dense_score"] is not None and hits[0]["keyword_score"] is not None


def test_upload_creates_a_knowledge_base_and_bad_files_are_named(client, tmp_path):
    good = tmp_path / "tea.txt"
    good.write_bytes("崂山绿茶\n\n崂山绿茶产自青岛崂山区，2024年茶园面积达到3.2万亩。".encode("gbk"))
    bad = tmp_path / "photo.txt"
    bad.write_bytes(b"\x89PNG\x00\x00" * 100)
    kb_choice, status = client.predict([handle_file(str(good)), handle_file(str(bad))], "tea", api_name="/upload")
    assert "tea.txt" in status and "photo.txt" in status and "未能索引" in status
    r = client.predict("崂山茶园面积有多少？", "tea", [], api_name="/answer")
    assert r["short"] == "3.2万亩"
    # the existing default knowledge base is untouched
    assert client.predict("2024年青岛市进出口达多少亿元？", "default", [], api_name="/answer")["short"] == "9076.7亿元"


def test_upload_of_only_bad_files_is_a_message_not_a_traceback(client, tmp_path):
    bad = tmp_path / "data.bin"
    bad.write_bytes(b"\x00\x01")
    _, status = client.predict([handle_file(str(bad))], "broken", api_name="/upload")
    assert status.startswith("**未能索引") and "data.bin" in status


def test_api_errors_reach_the_client_with_their_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="k must be"):
        client.predict("青岛", "default", -5, "hybrid", api_name="/search")
    with pytest.raises(AppError, match="没有名为"):
        client.predict("青岛", "no-such-kb", [], api_name="/answer")


@pytest.mark.parametrize("name", ["bad\nname", "eval-qingdao_qa-default-onnx-int8", "../up", "default"])
def test_upload_names_that_could_forge_logs_or_hit_internal_indexes_are_refused(client, tmp_path, name):
    good = tmp_path / "tea.txt"
    good.write_text("崂山绿茶\n\n崂山绿茶产自青岛崂山区。", encoding="utf-8")
    _, status = client.predict([handle_file(str(good))], name, api_name="/upload")
    assert "知识库名称只能" in status
