"""Evaluation: datasets, metrics and the runner behind `rag eval`.

Datasets: the bundled known-Q&A set (`eval/qingdao_qa.jsonl` over `corpus/`),
SQuAD-format JSON (CMRC 2018) and BEIR folders (`corpus.jsonl`, `queries.jsonl`,
`qrels/*.tsv`). Retrieval metrics come from `ranx`; a retrieved passage is
relevant when it contains the question's evidence (bundled set) or comes from the
gold paragraph (SQuAD) or is judged in the qrels (BEIR).
"""

from __future__ import annotations

import csv
import json
import statistics
import string
import time
from dataclasses import dataclass, field
from pathlib import Path

from .documents import Document, load_documents
from .paths import CHECKOUT, bundled_corpus, bundled_qa
from .reply import LOW_CONFIDENCE
from .zh import is_han, question_type

CMRC = (CHECKOUT or Path.cwd()) / "data" / "cmrc2018"  # in the checkout, with its licence; not in the wheel
ALIASES = {
    "qingdao": bundled_qa(),
    "cmrc2018-dev": CMRC / "cmrc2018_dev.json",
    "cmrc2018-trial": CMRC / "cmrc2018_trial.json",
}


@dataclass
class QAItem:
    qid: str
    question: str
    answers: list[str]  # empty: the documents hold no answer
    doc_ids: list[str] = field(default_factory=list)  # gold documents (SQuAD, BEIR)
    evidence: str = ""  # verbatim supporting text (bundled set)
    type: str = ""
    split: str = ""


@dataclass
class Dataset:
    name: str
    documents: list[Document]
    items: list[QAItem]

    def split(self, name: str | None) -> list[QAItem]:
        """`dev`/`test` (bundled set), `even`/`odd` (every other question in file order), or all."""
        if not name:
            return self.items
        if name in ("even", "odd"):
            answerable = [it for it in self.items if it.answers or it.type == "unanswerable"]
            return answerable[0::2] if name == "even" else answerable[1::2]
        chosen = [it for it in self.items if it.split == name]
        if not chosen and any(it.split for it in self.items):
            raise ValueError(f"no questions in split {name!r}; splits here: {sorted({i.split for i in self.items})}")
        return chosen or self.items


# ---- readers ---------------------------------------------------------------------------
def read_squad(path: str | Path) -> Dataset:
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
    return Dataset(Path(path).stem, docs, items)


def read_beir(folder: str | Path, split: str = "test") -> Dataset:
    """BEIR folder: retrieval only (BEIR has no answer strings)."""
    folder = Path(folder)
    docs = load_documents([folder / "corpus.jsonl"])
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            queries[str(row.get("_id", row.get("id")))] = row["text"]
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not qrels_file.exists():
        found = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise FileNotFoundError(f"{qrels_file} not found; qrels here: {found}")
    gold: dict[str, list[str]] = {}
    with open(qrels_file, encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) >= 3 and row[0] != "query-id" and float(row[2]) > 0:
                gold.setdefault(row[0], []).append(row[1])
    items = [QAItem(q, queries[q], [], docs_) for q, docs_ in gold.items() if q in queries]
    return Dataset(folder.name, docs, items)


def read_qa_jsonl(path: str | Path, documents: list[Document]) -> Dataset:
    """The bundled format: id, question, answers, evidence, article, type, split per line."""
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            items.append(
                QAItem(
                    row["id"],
                    row["question"],
                    row["answers"],
                    [],
                    row.get("evidence", ""),
                    row.get("type", ""),
                    row.get("split", ""),
                )
            )
    return Dataset(Path(path).stem, documents, items)


def load_dataset(name: str | Path | None = None) -> Dataset:
    """By alias (`qingdao`, `cmrc2018-dev`, `cmrc2018-trial`) or path (.json SQuAD, .jsonl Q&A, BEIR folder)."""
    path = ALIASES.get(str(name or "qingdao"), Path(str(name)))
    if not path.exists():
        raise FileNotFoundError(
            f"dataset {name!r} not found at {path}; use {sorted(ALIASES)} (CMRC needs a checkout's data/ folder) "
            "or the path of a SQuAD .json, a Q&A .jsonl or a BEIR folder."
        )
    if path.is_dir():
        return read_beir(path)
    if path.suffix == ".json":
        return read_squad(path)
    return read_qa_jsonl(path, load_documents([bundled_corpus()]))


# ---- metrics -------------------------------------------------------------------------------
_PUNCT = set(string.punctuation) | set("，。、；：？！“”‘’（）《》【】「」『』…—·～－")


def _segments(text: str) -> list[str]:
    """CMRC 2018 official segmentation: Chinese characters one by one, Latin words whole."""
    out, word = [], ""
    for ch in text.lower():
        if is_han(ch) or ch in _PUNCT or ch.isspace():
            if word:
                out.append(word)
                word = ""
            if not ch.isspace() and ch not in _PUNCT:
                out.append(ch)
        else:
            word += ch
    if word:
        out.append(word)
    return out


def _lcs(a: list[str], b: list[str]) -> int:
    """Longest common substring length, as the official CMRC scorer uses for F1."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def exact_match(prediction: str, answers: list[str]) -> float:
    pred = "".join(_segments(prediction))
    return float(any(pred == "".join(_segments(a)) for a in answers))


def f1(prediction: str, answers: list[str]) -> float:
    pred = _segments(prediction)
    best = 0.0
    for a in answers:
        gold = _segments(a)
        common = _lcs(pred, gold)
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def retrieval_metrics(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Hit@1/3/5, MRR@10 and nDCG@10 from ranx."""
    from ranx import Qrels, Run, evaluate

    qrels = {q: r for q, r in qrels.items() if r}
    if not qrels:
        return {}
    filled = {q: run.get(q) or {"__none__": 0.0} for q in qrels}
    names = {
        "hit_rate@1": "hit@1",
        "hit_rate@3": "hit@3",
        "hit_rate@5": "hit@5",
        "mrr@10": "mrr@10",
        "ndcg@10": "ndcg@10",
    }
    scores = evaluate(Qrels(qrels), Run(filled), list(names))
    return {names[m]: float(v) for m, v in scores.items()}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _mean(values) -> float:
    values = list(values)
    return float(statistics.mean(values)) if values else float("nan")


# ---- runner ---------------------------------------------------------------------------------
@dataclass
class Record:
    item: QAItem
    short: str | None
    quote: str
    abstained: bool
    quote_hit: bool
    retrieved: list[str]
    relevant: list[str]
    seconds: float
    verbatim: list[bool] = field(default_factory=list)  # document[start:end] == quote, per citation
    confidence: float | None = None  # the reader's calibrated confidence in an answer given

    def to_dict(self) -> dict:
        return {
            "id": self.item.qid,
            "question": self.item.question,
            "answers": self.item.answers,
            "type": self.item.type,
            "short": self.short,
            "quote": self.quote,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "quote_hit": self.quote_hit,
            "retrieved": self.retrieved[:5],
            "relevant": self.relevant,
        }


def relevant_ids(kb, item: QAItem) -> tuple[str, list[str]]:
    """('chunk', chunk ids holding the evidence) or ('doc', gold document ids)."""
    if not item.evidence:
        return "doc", list(item.doc_ids)
    out = []
    for chunk in kb.chunks.values():
        text = kb.document(chunk.doc_id)[chunk.start : chunk.end]
        if item.evidence in text:
            out.append(chunk.chunk_id)
    if not out:  # evidence crosses chunks: any chunk overlapping it counts
        for doc_id, doc in kb.documents.items():
            at = doc.text.find(item.evidence)
            if at >= 0:
                out += [
                    c.chunk_id
                    for c in kb.chunks.values()
                    if c.doc_id == doc_id and c.start < at + len(item.evidence) and c.end > at
                ]
    return "chunk", out


def run_qa(kb, items: list[QAItem], mode=None, k: int = 10, progress: bool = True, batch: int = 32) -> dict:
    """Retrieval, answer and cost figures for `items` against `kb` (one mode)."""
    from tqdm import tqdm

    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    records: list[Record] = []
    bar = tqdm(total=len(items), disable=not progress, desc=f"questions ({mode or 'default'})")
    t_start = time.perf_counter()
    for start in range(0, len(items), batch):
        group = items[start : start + batch]
        answers = kb.answer_many([it.question for it in group], mode=mode, k=k)
        for it, ans in zip(group, answers):
            level, relevant = relevant_ids(kb, it)
            key = (lambda h: h.chunk_id) if level == "chunk" else (lambda h: h.doc_id)
            ranking: dict[str, float] = {}
            for rank, hit in enumerate(ans.passages):
                ranking.setdefault(key(hit), float(len(ans.passages) - rank))
            run[it.qid] = ranking
            qrels[it.qid] = {r: 1 for r in relevant}
            quote = ans.citations[0].quote if ans.citations else ""
            hit = any(a in quote for a in it.answers)
            verbatim = [kb.document(c.doc_id)[c.start : c.end] == c.quote for c in ans.citations]
            # this question's own time: its share of the batched query encoding, its retrieval and its answer step
            seconds = sum(ans.timings.get(name, 0.0) for name in ("encode", "retrieve", "compose"))
            records.append(
                Record(
                    it, ans.short, quote, ans.abstained, hit, list(ranking), relevant, seconds, verbatim, ans.confidence
                )
            )
        bar.update(len(group))
    bar.close()
    wall = time.perf_counter() - t_start
    answerable = [r for r in records if r.item.answers]
    unanswerable = [r for r in records if r.item.type == "unanswerable"]
    result = retrieval_metrics(run, qrels)
    if answerable:
        # official CMRC metrics on the short answer; a missing short answer counts as wrong
        preds = [(r.short or "", r.item.answers) for r in answerable]
        result.update(
            {
                "quote@1": _mean(r.quote_hit for r in answerable),
                # stricter: the short answer itself is right and stands inside the first quote
                "answer@1": _mean(
                    bool(s) and s in r.quote and exact_match(s, r.item.answers) == 1.0
                    for r in answerable
                    for s in [r.short or ""]
                ),
                "short_em": _mean(exact_match(p, a) for p, a in preds),
                "short_f1": _mean(f1(p, a) for p, a in preds),
                "false_abstention": _mean(r.abstained for r in answerable),
            }
        )
    if unanswerable:
        abstained = [r for r in records if r.abstained]
        result["abstention_recall"] = _mean(r.abstained for r in unanswerable)
        result["abstention_precision"] = _mean(r.item.type == "unanswerable" for r in abstained)
    result.update(confidence_flags(records))
    checks = [ok for r in records for ok in r.verbatim]
    result["verbatim"] = _mean(checks) if checks else 1.0
    latencies = [r.seconds for r in records]
    result.update(
        {
            "latency_p50_ms": 1000 * percentile(latencies, 0.5),
            "latency_p95_ms": 1000 * percentile(latencies, 0.95),
            "questions_per_s": len(records) / wall if wall else float("nan"),
            "questions": len(records),
        }
    )
    return {"metrics": result, "records": records, "by_type": type_table(records)}


def confidence_flags(records: list[Record]) -> dict[str, float]:
    """How well the low-confidence warning separates the answers given: the share of wrong ones it
    flags (an unanswerable question answered, or short-answer F1 ≤ 0.5: 67个 for 99个 scores 0.5)
    and of right ones."""
    flagged: dict[str, list[bool]] = {"low_confidence_wrong": [], "low_confidence_right": []}
    for r in records:
        if r.abstained or r.confidence is None:
            continue
        wrong = not r.item.answers or f1(r.short or "", r.item.answers) <= 0.5
        flagged["low_confidence_wrong" if wrong else "low_confidence_right"].append(r.confidence < LOW_CONFIDENCE)
    return {name: _mean(flags) for name, flags in flagged.items() if flags}


TYPE_LABELS = {
    "quantity": "数量",
    "date": "时间",
    "person": "人物",
    "place": "地点",
    "which": "什么/哪个",
    "list": "列举",
    None: "其他",
}


def question_kind(item: QAItem) -> str:
    """The question's type from its wording (the same rules for every data set), or 不可回答."""
    if item.type == "unanswerable" or not item.answers:
        return "不可回答"
    return TYPE_LABELS[question_type(item.question)]


def type_table(records: list[Record]) -> dict[str, dict]:
    """Per question type: count, quote@1 and short F1 (the abstention rate for 不可回答)."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(question_kind(r.item), []).append(r)
    table = {}
    for kind, rows in groups.items():
        if kind == "不可回答":
            table[kind] = {"n": len(rows), "abstained": _mean(r.abstained for r in rows)}
        else:
            table[kind] = {
                "n": len(rows),
                "quote@1": _mean(r.quote_hit for r in rows),
                "short_f1": _mean(f1(r.short or "", r.item.answers) for r in rows),
            }
    return dict(sorted(table.items(), key=lambda kv: -kv[1]["n"]))
