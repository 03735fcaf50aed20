"""Min-max vs reciprocal-rank fusion of dense and keyword scores, on tuning questions only.

    python benchmarks/fusion.py

Retrieval only (no answer step): paragraph/chunk hit@1, hit@5 and MRR@10 of the hybrid
ranking for each fusion method and keyword weight, on the bundled set's dev split, CMRC 2018
trial and the even half of CMRC 2018 dev. The odd half of CMRC dev and the bundled test split
are held out and not read. Writes `eval/reports/fusion-<date>.md`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import FusionMethod, RetrievalMode
from rag.evaluation import load_dataset, relevant_ids, retrieval_metrics
from rag.kb import open_eval_index
from rag.report import benchmark_header, markdown_table

SETTINGS = [(FusionMethod.MINMAX, 0.5), (FusionMethod.MINMAX, 1.0), (FusionMethod.RRF, 0.5), (FusionMethod.RRF, 1.0)]
SETS = [("qingdao", "dev"), ("cmrc2018-trial", None), ("cmrc2018-dev", "even")]


def main() -> None:
    logging.disable(logging.WARNING)
    rows = []
    for name, split in SETS:
        data = load_dataset(name)
        kb = open_eval_index(data.name, data.documents)
        items = [it for it in data.split(split) if it.answers]
        vectors = kb.encoder.encode_queries([it.question for it in items])
        gold = {}
        for it in items:
            level, relevant = relevant_ids(kb, it)
            gold[it.qid] = (level, {r: 1 for r in relevant})
        for method, weight in SETTINGS:
            kb.config = kb.config.replace(fusion=method, keyword_weight=weight)
            run = {}
            for it, vec in zip(items, vectors):
                evidence = kb.evidence(it.question, 10, RetrievalMode.HYBRID, vec)
                level = gold[it.qid][0]
                ranking: dict[str, float] = {}
                for rank, hit in enumerate(evidence.hits):
                    ranking.setdefault(hit.chunk_id if level == "chunk" else hit.doc_id, 10.0 - rank)
                run[it.qid] = ranking
            m = retrieval_metrics(run, {q: g for q, (_, g) in gold.items()})
            label = f"{name} {split or 'all'}"
            rows.append((label, len(items), f"{method.value} w={weight}", m["hit@1"], m["hit@5"], m["mrr@10"]))
            print(
                f"{label:22} {method.value:6} w={weight}: hit@1 {m['hit@1']:.4f} hit@5 {m['hit@5']:.4f} "
                f"MRR@10 {m['mrr@10']:.4f}",
                flush=True,
            )
    out = ROOT / "eval" / "reports" / f"fusion-{time.strftime('%Y%m%d')}.md"
    lines = benchmark_header("Fusion: min-max vs RRF on tuning data (`python benchmarks/fusion.py`)")
    lines += markdown_table(["data", "questions", "fusion", "hit@1", "hit@5", "MRR@10"], [list(r) for r in rows])
    out.write_text("\n".join(lines) + "\n", "utf-8")
    print(f"report: {out}")


if __name__ == "__main__":
    main()
