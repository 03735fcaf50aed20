"""Encoder backends side by side on the same texts: torch (sentence-transformers), onnx, onnx-int8, onnx-int8pc.

    .venv/bin/python benchmarks/backends.py

Times document encoding (with sentence vectors) of the first 60 CMRC 2018 dev paragraphs' chunks
and of the bundled page's chunks, single-query latency and batched query throughput.
"""

import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import load_documents
from rag.chunking import Chunker
from rag.config import EncoderBackend
from rag.embedding import Encoder
from rag.evaluation import load_dataset


def main():
    logging.disable(logging.WARNING)
    data = load_dataset("cmrc2018-dev")
    chunks = [c for d in data.documents[:60] for c in Chunker().split(d)]
    page = Chunker().split(load_documents([ROOT / "corpus"])[0])
    questions = [it.question for it in data.items[:100]]
    for backend in EncoderBackend:
        enc = Encoder("default", backend=backend)
        enc.encode_queries(questions[:2])
        t = time.perf_counter()
        enc.encode_chunks([c.indexed_text() for c in chunks], [c.indexed_sentence_spans() for c in chunks])
        cmrc_rate = len(chunks) / (time.perf_counter() - t)
        t = time.perf_counter()
        enc.encode_chunks([c.indexed_text() for c in page], [c.indexed_sentence_spans() for c in page])
        page_rate = len(page) / (time.perf_counter() - t)
        single = []
        for q in questions:
            t = time.perf_counter()
            enc.encode_queries([q])
            single.append(time.perf_counter() - t)
        t = time.perf_counter()
        enc.encode_queries(questions)
        batched = len(questions) / (time.perf_counter() - t)
        print(
            f"{backend:10s} CMRC chunks {cmrc_rate:5.1f}/s  page chunks {page_rate:5.1f}/s  "
            f"query p50 {1000 * statistics.median(single):5.1f} ms  batched queries {batched:4.0f}/s"
        )


if __name__ == "__main__":
    main()
