"""Speed against the encoder's own limit, in one process and one run.

    .venv/bin/python benchmarks/speed.py            # bundled page
    .venv/bin/python benchmarks/speed.py --cmrc     # also CMRC 2018 dev (several minutes)

For each corpus: index build time split into parse+chunk / encode / write, against the
configured encoder's plain document encoding of the same chunk texts (the limit); `answer()`
latency p50/p95 warm, split into stages, against the same encoder's bare query encoding of
the same questions (the limit); time from a
new process to the first answer with the index built; peak RSS. Prints a table of ratios
(ours ÷ limit) and writes it to eval/reports/speed-*.md.
"""

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import KnowledgeBase, load_documents
from rag.chunking import Chunker
from rag.evaluation import load_dataset, percentile
from rag.reader import Passage
from rag.reader_composer import ReaderComposer
from rag.report import benchmark_header, figures_table, machine


def build_figures(name, documents, workdir):
    kb = KnowledgeBase(path=workdir / name)
    t = time.perf_counter()
    kb.add_documents(documents)
    kb.save()
    total = time.perf_counter() - t
    b = kb.build_seconds
    chunks = [c for d in documents for c in Chunker(kb.config.chunk_max_chars, kb.config.chunk_min_chars).split(d)]
    texts = [c.indexed_text() for c in chunks]
    t = time.perf_counter()
    kb.encoder.encode_documents(texts, batch_size=16)
    limit = time.perf_counter() - t
    return kb, {
        "chunks": len(chunks),
        "parse_chunk_s": b["parse_chunk"],
        "encode_s": b["encode"],
        "write_s": b["write"],
        "build_s": total,
        "build_chunks_per_s": len(chunks) / total,
        "encoder_chunks_per_s": len(chunks) / limit,
        "build_vs_encoder": (len(chunks) / total) / (len(chunks) / limit),
    }


def answer_figures(kb, questions):
    kb.answer(questions[0])  # warm
    stages: dict[str, list[float]] = {k: [] for k in ("encode", "tokenize", "dense", "keyword", "fusion", "compose")}
    total, bare = [], []
    for q in questions:
        t = time.perf_counter()
        kb.encoder.encode_queries([q])
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        a = kb.answer(q)
        total.append(time.perf_counter() - t)
        tm = a.timings
        stages["encode"].append(tm["encode"])
        stages["tokenize"].append(tm["retrieve"] - tm["dense"] - tm["keyword"] - tm["fusion"])
        for k in ("dense", "keyword", "fusion", "compose"):
            stages[k].append(tm[k])
    out = {
        "answer_p50_ms": 1000 * statistics.median(total),
        "answer_p95_ms": 1000 * percentile(total, 0.95),
        "bare_encode_query_p50_ms": 1000 * statistics.median(bare),
    }
    out["answer_vs_bare_encode"] = out["answer_p50_ms"] / out["bare_encode_query_p50_ms"]
    if isinstance(kb.composer, ReaderComposer):
        forward = reader_forward_seconds(kb, questions)
        out["bare_reader_forward_p50_ms"] = 1000 * statistics.median(forward)
        out["answer_vs_reader_forward"] = out["answer_p50_ms"] / out["bare_reader_forward_p50_ms"]
    out.update({f"stage_{k}_p50_ms": 1000 * statistics.median(v) for k, v in stages.items()})
    return out


def reader_forward_seconds(kb, questions):
    """The limit for the reader: one batched ONNX forward pass over the same number of windows
    (each filled to the token budget, as the answer step fills them), nothing else."""
    reader = kb.composer.reader
    out = []
    for q in questions:
        hits = kb.search(q, k=kb.config.answer_passages)
        passages = [Passage(c.text, c.title) for c in (kb.chunk(h.chunk_id) for h in hits) if c]
        _, encoded = reader.encode(q, passages, kb.config.reader_windows)
        t = time.perf_counter()
        reader.logits(encoded)
        out.append(time.perf_counter() - t)
    return out


def first_answer_seconds(index_dir: Path | None, runs: int = 3) -> float:
    code = (
        "import time; t=time.perf_counter(); import rag; "
        + (
            f"kb=rag.KnowledgeBase.open({str(index_dir)!r}); a=kb.answer('2024年青岛市进出口总值是多少？'); "
            if index_dir
            else "a=rag.answer('2024年青岛市进出口总值是多少？'); "
        )
        + "print(time.perf_counter()-t)"
    )
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cmrc", action="store_true", help="also CMRC 2018 dev (builds a 1,500-chunk index)")
    parser.add_argument("--questions", type=int, default=300, help="CMRC questions to time")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kb, fig = build_figures("page", load_documents([ROOT / "corpus"]), work)
        questions = [it.question for it in load_dataset("qingdao").items]
        fig.update(answer_figures(kb, questions))
        import rag

        rag.default_kb()  # make sure the default index is built before timing a cold process
        fig["new_process_first_answer_s"] = first_answer_seconds(None)
        rows["bundled page"] = fig
        if args.cmrc:
            data = load_dataset("cmrc2018-dev")
            kb, fig = build_figures("cmrc", data.documents, work)
            fig.update(answer_figures(kb, [it.question for it in data.items[: args.questions]]))
            fig["new_process_first_answer_s"] = first_answer_seconds(work / "cmrc")
            rows["CMRC 2018 dev"] = fig
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = benchmark_header("Speed", f"; peak RSS {rss_mb:.0f} MB") + figures_table(rows)
    text = "\n".join(lines)
    print(text)
    out = ROOT / "eval" / "reports" / f"speed-{time.strftime('%Y%m%d-%H%M%S')}"
    out.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps({"machine": machine(), "peak_rss_mb": rss_mb, "rows": rows}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
