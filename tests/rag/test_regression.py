"""Quality floors on the bundled test split (set from the measured figures; see README)."""

from rag.evaluation import load_dataset, run_qa

FLOORS = {"hit@5": 0.97, "quote@1": 0.85, "abstention_recall": 0.25, "abstention_precision": 0.5}


def test_bundled_test_split_meets_the_floors(news_kb):
    result = run_qa(news_kb, load_dataset("qingdao").split("test"), progress=False)
    metrics = result["metrics"]
    for name, floor in FLOORS.items():
        assert metrics[name] >= floor, f"{name} {metrics[name]:.3f} fell below {floor}"
    assert metrics["verbatim"] == 1.0
