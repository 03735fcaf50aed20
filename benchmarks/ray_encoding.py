"""Encoding on Ray vs the plain encoder, and a killed `rag index --ray` run resumed.

    .venv/bin/python benchmarks/ray_encoding.py [--chunks 1000]

Throughput: the first N chunks of CMRC 2018 dev (as `rag eval` chunks them), encoded
- plainly, in a process whose ONNX session has 1 thread, then 2 (`RAG_THREADS`);
- on a local Ray with 1 and 2 actors of 1 thread each (`RayChunkEncoder`), wall time including
  starting the actors and loading the model in each; Ray itself is started before the clock.
Efficiency = Ray chunks/s ÷ the plain encoder's on the same cores (1 thread for 1 worker, 2 threads
for 2 workers), and for 2 workers also ÷ twice the 1-thread rate (which these 2 cores cannot reach:
2 threads give ~1.5× one here). "After first batch" is an upper bound: every actor's first batch
is computed before that clock starts.

Resume: CMRC 2018 dev's articles written as .txt files, `rag index DIR --out KB --ray` killed
with SIGKILL part-way, then run again: the second run encodes only what the spool lacks, and
the knowledge base ends with every chunk.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Config, KnowledgeBase
from rag.chunking import Chunker
from rag.evaluation import load_dataset
from rag.report import benchmark_header, figures_table


def chunk_texts(n: int):
    data = load_dataset("cmrc2018-dev")
    c = Config()
    chunker = Chunker(c.chunk_max_chars, c.chunk_min_chars)
    chunks = [ch for d in data.documents for ch in chunker.split(d)][:n]
    return [ch.indexed_text() for ch in chunks], [ch.indexed_sentence_spans() for ch in chunks]


PLAIN = """
import json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.ray_encoding import chunk_texts
from rag import Config
from rag.embedding import shared_encoder
texts, spans = chunk_texts({n})
c = Config()
encoder = shared_encoder(c.model, c.device, c.max_seq_length, c.backend)
encoder.encode_chunks(texts[:16], spans[:16])  # warm
t = time.perf_counter()
encoder.encode_chunks(texts, spans)
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def plain(n: int, threads: int) -> float:
    env = {**os.environ, "RAG_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", PLAIN.format(root=str(ROOT), n=n)], env=env, capture_output=True, text=True, check=True
    )
    return n / json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def on_ray(n: int, workers: int) -> tuple[float, float]:
    """Chunks/s over the whole run (actors started and models loaded inside it), and from the first
    finished batch on (the rate a long run settles at)."""
    import ray

    from rag.embedding import shared_encoder
    from rag.ray_encoding import RayChunkEncoder

    texts, spans = chunk_texts(n)
    c = Config()
    dim = shared_encoder(c.model, c.device, c.max_seq_length, c.backend).dim
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    first: list = []
    real_run = RayChunkEncoder._run

    def noting_first(self, rows, progress):
        for batch in real_run(self, rows, progress):
            if not first:
                first.append((time.perf_counter(), len(batch["i"])))
            yield batch

    RayChunkEncoder._run = noting_first  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as spool:
        encoder = RayChunkEncoder(None, c.model, c.device, c.max_seq_length, c.backend, dim, Path(spool), workers)
        t = time.perf_counter()
        encoder.encode_chunks(texts, spans)
        end = time.perf_counter()
    RayChunkEncoder._run = real_run  # type: ignore[method-assign]
    ray.shutdown()
    (t_first, first_size) = first[0]
    return n / (end - t), (n - first_size) / (end - t_first)


def resume(kill_after: float) -> dict:
    data = load_dataset("cmrc2018-dev")
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for d in data.documents:
            (docs / f"{d.doc_id}.txt").write_text(d.text, "utf-8")
        out = Path(tmp) / "kb"
        spool = out.with_name("kb.encoding")
        command = [sys.executable, "-m", "rag.cli", "index", str(docs), "--out", str(out), "--ray"]
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(kill_after)
        os.killpg(first.pid, signal.SIGKILL)  # the driver and its Ray workers, as a crash would
        first.wait()
        subprocess.run(["pkill", "-9", "-f", "ray::"], check=False)
        parts = sorted(spool.glob("part-*.npz"))
        written = sum(len(np.load(p)["i"]) for p in parts)
        t = time.perf_counter()
        second = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        kb = KnowledgeBase.open(out)
        plain_kb = KnowledgeBase.build([docs], path=Path(tmp) / "plain")  # the same files, encoded plainly
        questions = [it.question for it in data.items[:200]]
        same = sum(kb.search(q, k=1)[0].chunk_id == plain_kb.search(q, k=1)[0].chunk_id for q in questions)
        rows = sorted(kb.chunks)
        plain_rows = {c.chunk_id: r for r, c in plain_kb.chunks.items()}
        ours = kb.index.dense.vectors(np.array(rows))
        theirs = plain_kb.index.dense.vectors(np.array([plain_rows[kb.chunks[r].chunk_id] for r in rows]))
        cosines = (ours * theirs).sum(1)
        c = Config()
        plain_chunks = sum(len(Chunker(c.chunk_max_chars, c.chunk_min_chars).split(d)) for d in kb.documents.values())
        return {
            "killed_after_s": kill_after,
            "chunks_in_spool_after_kill": written,
            "second_run_exit": second.returncode,
            "second_run_s": seconds,
            "chunks_in_knowledge_base": len(kb.chunks),
            "chunks_expected": plain_chunks,
            "spool_removed": not spool.exists(),
            "same_top1_as_plain_build_200_questions": same / len(questions),
            "chunk_vector_cosine_to_plain_build_min": float(cosines.min()),
            "chunk_vector_cosine_to_plain_build_median": float(np.median(cosines)),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--kill-after", type=float, default=45.0)
    args = parser.parse_args()
    n = args.chunks
    one, two = plain(n, 1), plain(n, 2)
    (ray1, ray1_steady), (ray2, ray2_steady) = on_ray(n, 1), on_ray(n, 2)
    columns = {
        "plain, 1 thread": {"chunks_per_s": one},
        "plain, 2 threads": {"chunks_per_s": two},
        "Ray, 1 worker": {
            "chunks_per_s": ray1,
            "chunks_per_s_after_first_batch": ray1_steady,
            "vs_plain_same_cores": ray1 / one,
            "vs_plain_same_cores_after_first_batch": ray1_steady / one,
        },
        "Ray, 2 workers": {
            "chunks_per_s": ray2,
            "chunks_per_s_after_first_batch": ray2_steady,
            "vs_plain_same_cores": ray2 / two,
            "vs_plain_same_cores_after_first_batch": ray2_steady / two,
            "vs_2x_plain_1_thread": ray2 / (2 * one),
        },
    }
    print(json.dumps(columns, indent=1), flush=True)
    resumed = resume(args.kill_after)
    print(json.dumps(resumed, indent=1), flush=True)
    lines = benchmark_header("Encoding on Ray", f"; {n} CMRC 2018 dev chunks") + [
        "Command: `python benchmarks/ray_encoding.py" + (f" --chunks {n}`" if n != 1000 else "`"),
        "",
        *figures_table(columns),
        "",
        "## A killed `rag index --ray` run, resumed",
        "",
        *figures_table({"resume": resumed}),
        "",
    ]
    out = ROOT / "eval" / "reports" / f"ray-encoding-{time.strftime('%Y%m%d-%H%M')}.md"
    out.write_text("\n".join(lines), "utf-8")
    print("\n".join(lines))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
