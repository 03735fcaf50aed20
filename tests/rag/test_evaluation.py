import json

from rag.evaluation import QAItem, Record, confidence_flags, exact_match, f1, load_dataset, read_beir


def test_cmrc_official_normalisation():
    assert exact_match("9076.7亿元。", ["9076.7亿元"]) == 1.0
    assert exact_match("“好品山东 鲁贸全球”", ["好品山东鲁贸全球"]) == 1.0
    assert 0 < f1("总投资1565.5亿元", ["1565.5亿元"]) < 1
    assert f1("Comic Blade月刊", ["《月刊Comic Blade》"]) == 0.5  # longest common substring, as CMRC scores
    assert f1("无关", ["答案"]) == 0.0


def test_bundled_set_shape():
    data = load_dataset("qingdao")
    items = data.items
    assert len(items) >= 150
    page = data.documents[0].text
    for it in items:
        assert it.split in ("dev", "test")
        if it.type != "unanswerable":
            assert it.evidence in page and it.answers
    assert sum(it.type == "unanswerable" for it in items) / len(items) >= 0.15
    assert sum(it.type == "paraphrase" for it in items) / len(items) >= 0.25


def test_beir_folder_reader(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "崂山", "text": "崂山是青岛的名山。"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "崂山在哪里"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    data = read_beir(tmp_path)
    assert [d.doc_id for d in data.documents] == ["d1"] and data.items[0].doc_ids == ["d1"]


def test_the_low_confidence_flag_is_scored_on_right_and_wrong_answers_apart():
    def record(answers, short, confidence, abstained=False):
        item = QAItem("q", "问题？", answers, type="" if answers else "unanswerable")
        return Record(item, short, short or "", abstained, False, [], [], 0.0, confidence=confidence)

    records = [
        record(["99个"], "99个", 0.9),  # right, not flagged
        record(["99个"], "99个", 0.3),  # right, flagged
        record(["99个"], "67个", 0.2),  # wrong, flagged
        record([], "耿涛", 0.7),  # unanswerable answered: wrong, not flagged
        record([], None, None, abstained=True),  # abstained: no answer to flag
    ]
    assert confidence_flags(records) == {"low_confidence_wrong": 0.5, "low_confidence_right": 0.5}
    assert confidence_flags([record(["99个"], "99个", None)]) == {}  # nothing calibrated: no figure
