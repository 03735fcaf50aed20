"""ONNX Runtime sessions for the encoder and the reader, and one gate on how many run at once.

Each model run already uses every core (intra-op threads), so running more than a couple at a time
adds no throughput on a laptop; but every concurrent run takes its own activations from the
session's memory arena, and the arena never gives them back. Sixteen chat requests at once grew the
server by ~300 MB that way. The gate keeps concurrent runs to the number of cores: a query can still
run beside an indexing batch, and memory stays what a few runs need.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

_runs = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def open_session(path: str | Path) -> Any:
    """A CPU session using every core (or `$RAG_THREADS`), without busy-waiting between runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # RAG_THREADS: a Ray worker given one CPU of a shared machine uses one thread
    options.intra_op_num_threads = int(os.environ.get("RAG_THREADS") or os.cpu_count() or 1)
    # no busy-waiting after a run: spinning threads would steal the cores FAISS and BM25 need next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(session: Any, outputs: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """`session.run`, waiting for a free slot (see the module docstring)."""
    with _runs:
        return session.run(outputs, feed)
