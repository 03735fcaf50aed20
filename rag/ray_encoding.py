"""Encoding chunks on Ray (`rag index ... --ray [ADDRESS]`): the slow step of indexing, spread out.

Ray Data streams the chunks through `map_batches` over an actor pool; each actor loads the ONNX
encoder once and encodes with one thread per CPU it was given, so N workers on N cores (or on N
machines of a cluster) run side by side. Without an address a local Ray starts on this machine.

Resumable: each finished batch is written to a spool folder (`<kb>.encoding/`) as it arrives,
under a plan naming the texts and the encoder; a run that crashes or is killed continues with the
batches not yet written, and the spool is removed once the knowledge base has been saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .embedding import EncodedChunks, shared_encoder

BATCH = 64  # chunks per Ray batch, and per spool file


class RayEncodingError(RuntimeError):
    """Ray is missing or cannot start/connect; the message says what to do."""


class _EncoderActor:
    """Holds one encoder per Ray worker process; `threads` ONNX threads (its share of the CPUs)."""

    def __init__(self, model: str, device: str, max_seq_length: int, backend: str, threads: int):
        os.environ["RAG_THREADS"] = str(threads)
        self.encoder = shared_encoder(model, device, max_seq_length, backend)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        spans = [[tuple(s) for s in json.loads(str(x))] for x in batch["spans"]]
        encoded = self.encoder.encode_chunks(texts, spans)
        sentences = np.empty(len(texts), object)
        sentences[:] = [s.astype(np.float16) for s in encoded.sentence_vectors]
        return {"i": np.asarray(batch["i"]), "vector": encoded.vectors, "sentences": sentences}


class RayChunkEncoder:
    """`encode_chunks` like `Encoder`'s, run on Ray and resumable from `spool`."""

    def __init__(
        self,
        address: str | None,
        model: str,
        device: str,
        max_seq_length: int,
        backend: str,
        dim: int,
        spool: Path,
        workers: int | None = None,
        threads_per_worker: int = 1,
        batch_size: int = BATCH,
    ):
        self.address = address
        self.settings = (model, device, max_seq_length, str(backend))
        self.dim = dim
        self.spool = Path(spool)
        self.workers = workers
        self.threads = threads_per_worker
        self.batch_size = batch_size

    def _plan(self, texts: list[str], spans: list) -> str:
        h = hashlib.sha256(json.dumps(self.settings).encode())
        for text, s in zip(texts, spans):
            h.update(text.encode("utf-8") + b"\0" + json.dumps(s).encode() + b"\1")
        return h.hexdigest()

    def _done(self, plan: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Chunks already encoded by an earlier run of the same plan (a different plan starts over)."""
        plan_file = self.spool / "plan"
        if plan_file.is_file() and plan_file.read_text() != plan:
            shutil.rmtree(self.spool)
        self.spool.mkdir(parents=True, exist_ok=True)
        plan_file.write_text(plan)
        done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for part in sorted(self.spool.glob("part-*.npz")):
            try:
                with np.load(part) as f:
                    ids, vectors, counts, sentences = f["i"], f["vector"], f["counts"], f["sentences"]
            except (OSError, ValueError, KeyError):  # a part cut short by the crash: encode it again
                part.unlink()
                continue
            for i, v, s in zip(ids.tolist(), vectors, np.split(sentences, np.cumsum(counts)[:-1])):
                done[i] = (v, s)
        return done

    def _write_part(self, batch: dict) -> None:
        ids = np.asarray(batch["i"], np.int64)
        sentences = list(batch["sentences"])
        tmp = self.spool / f".part-{int(ids.min()):09d}-{os.getpid()}.npz"
        np.savez(
            tmp,
            i=ids,
            vector=np.asarray(batch["vector"], np.float32),
            counts=np.array([len(s) for s in sentences], np.int64),
            sentences=np.concatenate(sentences) if sentences else np.zeros((0, self.dim), np.float16),
        )
        os.replace(tmp, self.spool / f"part-{int(ids.min()):09d}-{int(ids.max()):09d}.npz")

    def encode_chunks(
        self, texts: list[str], sentence_spans: list[list[tuple[int, int]]], progress: bool = False
    ) -> EncodedChunks:
        if not texts:
            return EncodedChunks(np.zeros((0, self.dim), np.float32), [])
        spans = [[list(s) for s in spans] for spans in sentence_spans]
        done = self._done(self._plan(texts, spans))
        todo = [i for i in range(len(texts)) if i not in done]
        if todo:
            for batch in self._run([{"i": i, "text": texts[i], "spans": json.dumps(spans[i])} for i in todo], progress):
                self._write_part(batch)
                for i, v, s in zip(np.asarray(batch["i"]).tolist(), batch["vector"], batch["sentences"]):
                    done[i] = (np.asarray(v, np.float32), np.asarray(s, np.float16))
        vectors = np.stack([done[i][0] for i in range(len(texts))]).astype(np.float32)
        return EncodedChunks(vectors, [done[i][1] for i in range(len(texts))])

    def _run(self, rows: list[dict], progress: bool):
        try:
            import ray
        except ImportError as exc:
            raise RayEncodingError("--ray needs Ray Data: pip install 'rag-qingdao[scale]'") from exc
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address,
                    num_cpus=None if self.address else (self.workers or os.cpu_count() or 1) * self.threads,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError by cause
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise RayEncodingError(
                    f"could not start {where} ({type(exc).__name__}: {str(exc)[:160]}); check the address "
                    "(`ray start --head` prints it) or run without --ray."
                ) from exc
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        workers = self.workers or max(1, int(ray.available_resources().get("CPU", 1)) // self.threads)
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // self.batch_size))).map_batches(
            _EncoderActor,
            fn_constructor_args=(*self.settings, self.threads),
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=self.threads,
        )
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")

    def finished(self) -> None:
        """The encoded chunks are saved in the knowledge base: the spool is no longer needed."""
        shutil.rmtree(self.spool, ignore_errors=True)
