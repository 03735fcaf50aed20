"""Retrieval at 100k and 1M chunks: build time, memory, search latency, ANN recall.

    .venv/bin/python benchmarks/scale.py --sizes 100000 1000000

Encoding a million chunks would take days on 2 cores, so the chunks are synthetic and say so:
- vectors: the 1,495 real CMRC 2018 dev chunk vectors (from `rag eval cmrc2018-dev`'s index), each
  copy perturbed by Gaussian noise (half the vector's norm) and
  re-normalised, so neighbourhoods are realistic but no copy equals another;
- keyword tokens: the real chunks' jieba+bigram token lists, each copy with 10% of its tokens
  replaced by tokens of another chunk;
- queries: 200 real CMRC dev questions, encoded and tokenised as the product does.
Dense search is timed per index kind (flat = exact, ivf-sq8, hnsw), with recall@10 of each
approximate kind against exact search on the same vectors, and so is the whole hybrid retrieval
(dense + BM25 + fusion, query encoding excluded) as the product runs it.

    .venv/bin/python benchmarks/scale.py --store milvus --sizes 100000 1000000

`--store milvus` puts the same synthetic chunks into a Milvus collection instead (milvus-lite's
file unless `--uri http://host:19530`) through the product's `MilvusIndex`: insert throughput
(batches of 1,000, then flush), hybrid retrieval p50/p95 (our tokens as sparse vectors, our
fusion), and the process's memory — with milvus-lite the "server" runs in this process.
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.dense import DenseIndex
from rag.evaluation import load_dataset, percentile
from rag.kb import open_eval_index
from rag.keyword_index import KeywordIndex
from rag.report import benchmark_header, figures_table, machine
from rag.retriever import HybridRetriever


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def milvus_rows(kb, n, vectors, docs, picks, uri, qvecs, qtoks, questions) -> dict:
    """The synthetic chunks in a Milvus collection, through the product's MilvusIndex."""
    import shutil
    import tempfile

    from rag import Config
    from rag.config import StoreKind
    from rag.milvus_index import MilvusIndex

    folder = Path(tempfile.mkdtemp(prefix="scale-milvus-"))
    config = Config(store=StoreKind.MILVUS, uri=uri or str(folder / "scale.milvus.db"))
    index = MilvusIndex.create(vectors.shape[1], config, folder / "scale")
    chunks = [kb.chunks[int(r)] for r in sorted(kb.chunks)]
    tokens = {i: docs[i] for i in range(n)}
    row: dict = {"milvus_rss_before_mb": resident_mb()}
    t = time.perf_counter()
    step = 100_000  # apply in slices so progress shows; each slice inserts in batches of 1,000
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        index.apply(rows, vectors[rows], [chunks[int(picks[i])] for i in rows], tokens, rows[:0])
        print(f"  inserted {rows[-1] + 1:,}", flush=True)
    index.save(folder)  # flush
    seconds = time.perf_counter() - t
    row["milvus_insert_per_s"] = n / seconds
    row["milvus_rss_after_insert_mb"] = resident_mb()
    retriever = index.retriever()
    row["milvus_hybrid_retrieval_p50_ms"], row["milvus_hybrid_retrieval_p95_ms"] = timed(
        lambda case: retriever.retrieve(case[0], case[1], 10, query_text=case[2]), list(zip(qvecs, qtoks, questions))
    )
    row["milvus_dense_p50_ms"], row["milvus_dense_p95_ms"] = timed(lambda q: index.dense.search(q, 50), qvecs)
    row["milvus_keyword_p50_ms"], row["milvus_keyword_p95_ms"] = timed(lambda q: index.keyword.search(q, 50), qtoks)
    row["milvus_rss_after_search_mb"] = resident_mb()
    index.drop()
    shutil.rmtree(folder, ignore_errors=True)
    return row


def synthetic(kb, n, rng):
    rows = np.array(sorted(kb.chunks))
    base = kb.index.dense.vectors(rows).astype(np.float32)
    pick = rng.integers(0, len(base), n)
    vectors = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        sel = pick[start : start + 100_000]
        noise = rng.standard_normal((len(sel), base.shape[1])).astype(np.float32)
        noise *= 0.5 / np.linalg.norm(noise, axis=1, keepdims=True)
        v = base[sel] + noise
        vectors[start : start + len(sel)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    token_lists = [kb.tokens[int(r)] for r in rows]
    docs = []
    for i in pick:
        toks = list(token_lists[i])
        other = token_lists[rng.integers(0, len(token_lists))]
        for j in rng.choice(len(toks), max(1, len(toks) // 10), replace=False):
            toks[j] = other[j % len(other)]
        docs.append(toks)
    return vectors, docs, pick  # pick: which real chunk each copy perturbs (milvus rows carry its ids)


def timed(fn, queries):
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append(1000 * (time.perf_counter() - t))
    return statistics.median(out), percentile(out, 0.95)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf-sq8", "hnsw"])
    parser.add_argument("--store", choices=["local", "milvus"], default="local")
    parser.add_argument("--uri", default=None, help="a Milvus server (default: a milvus-lite file in /tmp)")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    data = load_dataset("cmrc2018-dev")
    kb = open_eval_index(data.name, data.documents)
    items = data.items[: args.queries]
    qvecs = kb.encoder.encode_queries([it.question for it in items])
    qtoks = [kb.tokenizer(it.question) for it in items]
    rng = np.random.default_rng(0)
    results = {}
    for n in args.sizes:
        t = time.perf_counter()
        vectors, docs, picks = synthetic(kb, n, rng)
        row = {"make_synthetic_s": time.perf_counter() - t}
        ids = np.arange(n)
        if args.store == "milvus":
            questions = [it.question for it in items]
            row.update(milvus_rows(kb, n, vectors, docs, picks, args.uri, qvecs, qtoks, questions))
            results[f"{n:,}"] = row
            print(n, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
            del vectors, docs
            continue
        t = time.perf_counter()
        keyword = KeywordIndex(docs)
        row["keyword_build_s"] = time.perf_counter() - t
        del docs
        row["keyword_p50_ms"], row["keyword_p95_ms"] = timed(lambda q, kw=keyword: kw.search(q, 50), qtoks)
        exact = None
        for kind in args.kinds:
            t = time.perf_counter()
            index = DenseIndex.build(vectors.shape[1], ids, vectors, kind)
            row[f"{kind}_build_s"] = time.perf_counter() - t
            row[f"{kind}_memory_mb"] = index.memory_bytes() / 2**20
            row[f"{kind}_p50_ms"], row[f"{kind}_p95_ms"] = timed(lambda q, ix=index: ix.search(q, 50), qvecs)
            retriever = HybridRetriever(index, keyword)
            row[f"{kind}_hybrid_retrieval_p50_ms"], row[f"{kind}_hybrid_retrieval_p95_ms"] = timed(
                lambda pair, r=retriever: r.retrieve(pair[0], pair[1], 10), list(zip(qvecs, qtoks))
            )
            found = [set(index.search(q, 10)[0].tolist()) for q in qvecs]
            if kind == "flat":
                exact = found
            elif exact is not None:
                row[f"{kind}_recall@10"] = float(np.mean([len(a & b) / 10 for a, b in zip(found, exact)]))
            del index, retriever  # free the vectors before the next kind
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results[f"{n:,}"] = row
        print(n, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
        del vectors
    note = f"; synthetic chunks from CMRC 2018 dev (see benchmarks/scale.py); store {args.store}"
    lines = benchmark_header("Scale", note) + figures_table(results)
    text = "\n".join(lines)
    print(text)
    out = ROOT / "eval" / "reports" / f"scale-{args.store}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "rows": results}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
