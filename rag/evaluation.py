"""Benchmarks: SQuAD-format sets (CMRC 2018) → retrieval and answer metrics.

Retrieval metrics come from `ranx` (hit rate, MRR, nDCG), not hand-written formulas.
A retrieved chunk counts as relevant when it comes from the gold paragraph.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from .documents import Document


@dataclass
class QAItem:
    qid: str
    question: str
    answers: list[str]
    doc_ids: list[str]  # gold paragraphs
    evidence: str = ""
    type: str = ""
    split: str = ""


@dataclass
class QASet:
    name: str
    documents: list[Document]
    items: list[QAItem] = field(default_factory=list)


def read_squad(path: str | Path) -> QASet:
    """SQuAD/CMRC JSON: each paragraph becomes a document, each question an item."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    docs, items = [], []
    for article in data["data"]:
        title = article.get("title", "")
        for p_index, para in enumerate(article["paragraphs"]):
            doc_id = str(para.get("id") or f"{article.get('id', title)}-{p_index}")
            docs.append(Document(doc_id, para["context"], title, str(path)))
            for qa in para["qas"]:
                if not qa["question"].strip():
                    continue  # CMRC trial has a blank question; it cannot be asked
                answers = list(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a["text"].strip()))
                items.append(QAItem(str(qa["id"]), qa["question"], answers, [doc_id]))
    return QASet(Path(path).stem, docs, items)


def retrieval_metrics(run: dict[str, dict[str, float]], items: list[QAItem]) -> dict[str, float]:
    """Hit@1/3/5, MRR@10 and nDCG@10 from ranx over doc-level runs."""
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({it.qid: {d: 1 for d in it.doc_ids} for it in items if it.doc_ids})
    judged = {qid: docs for qid, docs in run.items() if qid in qrels.qrels}
    filled = {qid: judged.get(qid) or {"__none__": 0.0} for qid in qrels.qrels}
    metrics = ["hit_rate@1", "hit_rate@3", "hit_rate@5", "mrr@10", "ndcg@10"]
    scores = evaluate(qrels, Run(filled), metrics)
    names = {"hit_rate@1": "hit@1", "hit_rate@3": "hit@3", "hit_rate@5": "hit@5"}
    return {names.get(m, m): float(v) for m, v in scores.items()}


def doc_run(hits) -> dict[str, float]:
    """Chunk hits → best score per document, in rank order."""
    out: dict[str, float] = {}
    for rank, hit in enumerate(hits):
        out.setdefault(hit.doc_id, float(len(hits) - rank))
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_qa(kb, items: list[QAItem], mode=None, k: int = 10, progress: bool = True) -> dict:
    """Retrieval and answer figures for `items` against `kb`."""
    from tqdm import tqdm

    run: dict[str, dict[str, float]] = {}
    rows = []
    latencies = []
    batch = 32
    bar = tqdm(total=len(items), disable=not progress, desc="questions")
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        t0 = time.perf_counter()
        answers = kb.answer_many([it.question for it in chunk], mode=mode, k=k)
        per = (time.perf_counter() - t0) / len(chunk)
        for it, ans in zip(chunk, answers):
            latencies.append(per)
            run[it.qid] = doc_run(ans.passages)
            quote = ans.citations[0].quote if ans.citations else ""
            rows.append((it, ans, any(a in quote for a in it.answers) if it.answers else None))
        bar.update(len(chunk))
    bar.close()
    answerable = [r for r in rows if r[0].answers]
    unanswerable = [r for r in rows if not r[0].answers]
    result = retrieval_metrics(run, [it for it in items if it.doc_ids])
    result["quote@1"] = statistics.mean(r[2] for r in answerable) if answerable else float("nan")
    result["false_abstention"] = statistics.mean(r[1].abstained for r in answerable) if answerable else float("nan")
    if unanswerable:
        abstained = [r for r in rows if r[1].abstained]
        result["abstention_recall"] = statistics.mean(r[1].abstained for r in unanswerable)
        result["abstention_precision"] = (
            statistics.mean(not r[0].answers for r in abstained) if abstained else float("nan")
        )
    verbatim = [kb.document(c.doc_id)[c.start : c.end] == c.quote for _, a, _ in rows for c in a.citations]
    result["verbatim"] = statistics.mean(verbatim) if verbatim else 1.0
    result["latency_p50_ms"] = 1000 * percentile(latencies, 0.5)
    result["questions"] = len(items)
    result["rows"] = rows
    return result
