"""The same knowledge base searched locally and in Milvus: top-1 passage agreement, quote@1, latency.

    .venv/bin/python benchmarks/milvus_parity.py                 # bundled dev split + CMRC dev even half
    .venv/bin/python benchmarks/milvus_parity.py --held-out      # bundled test + CMRC dev odd half (once)

Each data set's local evaluation index (built by `rag eval`) is copied into milvus-lite files with
`KnowledgeBase.copy` (no encoding again, same vectors and row ids), one per variant:
  local         FAISS + bm25s files (the default store)
  milvus        our jieba+bigram tokens as BM25-weighted sparse vectors, our fusion (the default milvus)
  milvus-bm25   Milvus's own BM25 function with its jieba analyzer, our fusion
  milvus-fused  our tokens, fused by Milvus's WeightedRanker (`Config.fuse_in_milvus`)
and every question is asked through `answer_many` as `rag eval` asks it. Retrieval time is the
hybrid retrieval alone (dense + keyword + fusion, the question already encoded), median per question.
"""

import argparse
import json
import logging
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Config, KnowledgeBase
from rag.evaluation import load_dataset, run_qa
from rag.kb import open_eval_index
from rag.paths import index_root
from rag.report import benchmark_header, figures_table

VARIANTS: dict[str, dict] = {
    "milvus": {"store": "milvus"},
    "milvus-bm25": {"store": "milvus", "milvus_keyword": "bm25"},
    "milvus-fused": {"store": "milvus", "fuse_in_milvus": True},
}


def measure(kb: KnowledgeBase, items, top1_local: list[str] | None) -> tuple[dict, list[str]]:
    questions = [it.question for it in items]
    vectors = kb.encoder.encode_queries(questions)
    top1, seconds = [], []
    for q, v in zip(questions, vectors):
        t = time.perf_counter()
        hits = kb.evidence(q, k=5, query_vector=v).hits
        seconds.append(time.perf_counter() - t)
        top1.append(hits[0].chunk_id if hits else "")
    metrics = run_qa(kb, items, progress=False)["metrics"]
    figures = {
        "quote@1": metrics["quote@1"],
        "short_f1": metrics.get("short_f1"),
        "hit@5": metrics.get("hit@5"),
        "retrieval_p50_ms": 1000 * statistics.median(seconds),
    }
    if top1_local is not None:
        figures["same_top1_as_local"] = sum(a == b for a, b in zip(top1, top1_local)) / len(top1)
    return figures, top1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", action="store_true", help="the held-out splits (report once, at the end)")
    parser.add_argument("--out", default=str(ROOT / "eval" / "reports"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    sets = [("qingdao", "test" if args.held_out else "dev"), ("cmrc2018-dev", "odd" if args.held_out else "even")]
    work = index_root() / "milvus-parity"
    shutil.rmtree(work, ignore_errors=True)
    columns: dict[str, dict] = {}
    for name, split in sets:
        data = load_dataset(name)
        items = data.split(split)
        local = open_eval_index(data.name, data.documents)
        figures, top1 = measure(local, items, None)
        columns[f"{name} {split} · local"] = {"questions": len(items), "chunks": len(local.chunks), **figures}
        for variant, settings in VARIANTS.items():
            t = time.perf_counter()
            copy_config = Config(**settings)
            local.copy(work / f"{data.name}-{variant}", copy_config)
            copy_seconds = time.perf_counter() - t
            kb = KnowledgeBase.open(work / f"{data.name}-{variant}", Config(**settings))
            figures, _ = measure(kb, items, top1)
            columns[f"{name} {split} · {variant}"] = {"copy_s": copy_seconds, **figures}
            print(variant, name, split, json.dumps({k: round(v, 4) for k, v in figures.items() if v is not None}))
    lines = benchmark_header("Local store vs Milvus (milvus-lite)") + [
        "Command: `python benchmarks/milvus_parity.py" + (" --held-out`" if args.held_out else "`"),
        "",
        *figures_table(columns),
        "",
    ]
    out = Path(args.out) / f"milvus-parity-{'held-out' if args.held_out else 'dev'}-{time.strftime('%Y%m%d-%H%M')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), "utf-8")
    print("\n".join(lines))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
