"""`KnowledgeBase`: documents → chunks → dense + keyword indexes, saved atomically.

On disk (`index/<name>/`): a `CURRENT` file naming the live version folder, which
holds `manifest.json`, `documents.jsonl`, `chunks.jsonl`, `tokens.jsonl`,
`dense.faiss`, `sentences.npy` and `bm25/`. A save writes a new version folder
and then swaps `CURRENT` with an atomic rename, so an interrupted build leaves
the previous index whole and usable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np

from .chunking import Chunk, Chunker
from .composers import create_composer
from .config import Config, RetrievalMode
from .conversation import contextualize
from .dense import DenseIndex, choose_kind
from .documents import Document, load_documents
from .embedding import Encoder
from .keyword import ChineseTokenizer, KeywordIndex
from .retriever import HybridRetriever
from .schema import Answer, Hit


FORMAT_VERSION = 1
MAX_QUESTION_CHARS = 2000  # longer questions are cut: no model reads past 512 tokens anyway


class IndexMismatchError(RuntimeError):
    """An index that cannot be used as asked; the message says how to rebuild it."""


def check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty; type a question, e.g. 2024年青岛市进出口总值是多少？")
    return question.strip()[:MAX_QUESTION_CHARS]


class KnowledgeBase:
    """A searchable, answerable collection of documents.

    >>> kb = KnowledgeBase.build(["corpus/"], path="index/mykb")   # doctest: +SKIP
    >>> kb.answer("2024年青岛市进出口达多少亿元？").short              # doctest: +SKIP
    '9076.7亿元'
    """

    def __init__(self, config: Config | None = None, path: str | Path | None = None):
        self.config = config or Config()
        self.path = Path(path) if path else None
        # jieba's dictionaries and the encoder load side by side: start-up is most of a first answer
        with ThreadPoolExecutor(1) as pool:
            tokenizer = pool.submit(ChineseTokenizer, self.config.user_dict)
            self.encoder = Encoder(self.config.model, self.config.device, self.config.max_seq_length, self.config.backend)
            self.tokenizer = tokenizer.result()
        self.documents: dict[str, Document] = {}
        self.chunks: dict[int, Chunk] = {}  # row id -> chunk
        self._row_of: dict[str, int] = {}  # chunk id -> row id
        self.tokens: dict[int, list[str]] = {}
        self.sentence_vectors: dict[int, np.ndarray] = {}
        self.dense = DenseIndex(self.encoder.dim, choose_kind(self.config.dense_index, 0), **self._dense_params())
        self._next_row = 0
        self._retriever: HybridRetriever | None = None
        self.composer = create_composer(self.config)
        self.build_seconds: dict[str, float] = {}

    # ---- building -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        sources: Iterable[str | Path],
        path: str | Path | None = None,
        config: Config | None = None,
        progress: bool = False,
    ) -> "KnowledgeBase":
        docs = load_documents(sources)
        if not docs:
            raise ValueError("no readable documents in the given sources (.txt, .md or .jsonl files).")
        kb = cls(config, path)
        kb.add_documents(docs, progress=progress)
        if path:
            kb.save()
        return kb

    def add(self, sources: Iterable[str | Path], progress: bool = False) -> list[str]:
        """Add files/folders; documents whose id exists are replaced. Returns the ids added."""
        docs = load_documents(sources)
        self.add_documents(docs, progress=progress)
        if self.path:
            self.save()
        return [d.doc_id for d in docs]

    def add_documents(self, docs: list[Document], progress: bool = False) -> None:
        replaced = [d.doc_id for d in docs if d.doc_id in self.documents]
        if replaced:
            self._drop(replaced)
        t0 = time.perf_counter()
        chunker = Chunker(self.config.chunk_max_chars, self.config.chunk_min_chars)
        new_chunks = [c for d in docs for c in chunker.split(d)]
        tokens = [self.tokenizer(c.context()) for c in new_chunks]
        t1 = time.perf_counter()
        encoded = self.encoder.encode_chunks(
            [c.context() for c in new_chunks],
            [_shift(c) for c in new_chunks],
            progress=progress,
        )
        t2 = time.perf_counter()
        rows = np.arange(self._next_row, self._next_row + len(new_chunks))
        self._next_row += len(new_chunks)
        for doc in docs:
            self.documents[doc.doc_id] = doc
        for row, chunk, toks, svec in zip(rows, new_chunks, tokens, encoded.sentence_vectors):
            self.chunks[int(row)] = chunk
            self._row_of[chunk.chunk_id] = int(row)
            self.tokens[int(row)] = toks
            self.sentence_vectors[int(row)] = svec
        self.dense.add(rows, encoded.vectors)
        wanted = choose_kind(self.config.dense_index, self.dense.size)
        if wanted != self.dense.kind:  # grown past the exact-search size: rebuild approximate
            ids = self.dense.ids()
            self.dense = DenseIndex.build(self.encoder.dim, ids, self.dense.vectors(ids), wanted, **self._dense_params())
        self._retriever = None
        self.build_seconds = {"parse_chunk": t1 - t0, "encode": t2 - t1, "chunks": len(new_chunks)}

    def _dense_params(self) -> dict:
        return {"nprobe": self.config.ivf_nprobe, "ef_search": self.config.hnsw_ef_search}

    def remove(self, doc_ids: Iterable[str]) -> None:
        doc_ids = list(doc_ids)
        missing = [d for d in doc_ids if d not in self.documents]
        if missing:
            raise KeyError(f"no documents with ids {missing[:5]} in this knowledge base")
        self._drop(doc_ids)
        if self.path:
            self.save()

    def _drop(self, doc_ids: list[str]) -> None:
        gone = set(doc_ids)
        rows = [r for r, c in self.chunks.items() if c.doc_id in gone]
        self.dense.remove(np.array(rows, np.int64))
        for r in rows:
            del self._row_of[self.chunks[r].chunk_id]
            del self.chunks[r], self.tokens[r], self.sentence_vectors[r]
        for d in gone:
            del self.documents[d]
        self._retriever = None

    # ---- querying -----------------------------------------------------------------------
    @property
    def model(self):
        """The SentenceTransformer in use."""
        return self.encoder.model

    def document(self, doc_id: str) -> str:
        try:
            return self.documents[doc_id].text
        except KeyError:
            raise KeyError(f"no document {doc_id!r} in this knowledge base") from None

    def chunk(self, chunk_id: str) -> Chunk | None:
        row = self._row_of.get(chunk_id)
        return None if row is None else self.chunks[row]

    @property
    def retriever(self) -> HybridRetriever:
        if self._retriever is None:
            rows = np.array(sorted(self.chunks), np.int64)
            self._retriever = HybridRetriever(self.dense, KeywordIndex([self.tokens[int(r)] for r in rows]), rows)
        return self._retriever

    def _rank(self, question: str, k: int, mode: RetrievalMode, query_vector=None):
        tokens = self.tokenizer(question)
        if query_vector is None and mode is not RetrievalMode.KEYWORD:
            query_vector = self.encoder.encode_queries([question])[0]
        ranked = self.retriever.retrieve(
            query_vector, tokens, k, mode, self.config.candidates, self.config.keyword_weight
        )
        return ranked, query_vector, tokens

    def search(self, question: str, k: int | None = None, mode: str | RetrievalMode | None = None) -> list[Hit]:
        question = check_question(question)
        ranked, _, _ = self._rank(question, k or self.config.top_k, RetrievalMode.parse(mode or self.config.mode))
        return self._hits(ranked)

    def _hits(self, ranked) -> list[Hit]:
        hits = []
        for row, fused, dense, kw in zip(ranked.rows, ranked.fused, ranked.dense, ranked.keyword):
            c = self.chunks[int(row)]
            hits.append(
                Hit(c.chunk_id, c.doc_id, c.title, c.text, c.start, c.end, float(fused),
                    None if np.isnan(dense) else float(dense), None if np.isnan(kw) else float(kw))
            )
        return hits

    def answer(
        self, question: str, mode: str | RetrievalMode | None = None, history: list[str] | None = None
    ) -> Answer:
        """Answer `question`; with `history` (earlier questions) a follow-up such as 「总投资多少？」
        is searched in the context of the last self-contained question (`Answer.searched`)."""
        question = check_question(question)
        searched = contextualize(question, history or [])
        answer = self.answer_many([searched], mode, focus=[question])[0]
        answer.question = question
        return answer

    def answer_many(
        self,
        questions: list[str],
        mode: str | RetrievalMode | None = None,
        k: int | None = None,
        focus: list[str] | None = None,
    ) -> list[Answer]:
        """Answers for many questions; query vectors are encoded in one batch.

        `k` passages are retrieved per question (returned in `Answer.passages`).
        """
        questions = [check_question(q) for q in questions]
        mode = RetrievalMode.parse(mode or self.config.mode)
        t0 = time.perf_counter()
        vectors = self.encoder.encode_queries(questions)  # the composer scores sentences with them in every mode
        encode_each = (time.perf_counter() - t0) / max(1, len(questions))
        answers = []
        for question, vector, asked in zip(questions, vectors, focus or questions):
            t1 = time.perf_counter()
            ranked, vector, tokens = self._rank(
                question, k or max(self.config.top_k, self.config.answer_passages), mode, vector
            )
            t2 = time.perf_counter()
            rows = [int(r) for r in ranked.rows]
            answer = self.composer.compose(
                question,
                vector,
                [self.chunks[r] for r in rows],
                [self.sentence_vectors[r] for r in rows],
                self._hits(ranked),
                self.documents,
                self.tokenizer,
                self.retriever.keyword.idf,
                focus=asked,
            )
            t3 = time.perf_counter()
            answer.timings = {"encode": encode_each, **ranked.timings, "retrieve": t2 - t1, "compose": t3 - t2}
            answers.append(answer)
        return answers

    # ---- persistence --------------------------------------------------------------------
    def manifest(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.config.model,
            "dim": self.encoder.dim,
            "corpus_fingerprint": fingerprint(self.documents.values()),
            "config": self.config.to_dict(),
            "documents": len(self.documents),
            "chunks": len(self.chunks),
            "dense_index": {"kind": self.dense.kind, **self.dense.params},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "last_build_seconds": self.build_seconds,
        }

    def save(self, path: str | Path | None = None) -> Path:
        root = Path(path or self.path or "")
        if not str(root):
            raise ValueError("no path to save to; pass path=...")
        self.path = root
        t0 = time.perf_counter()
        root.mkdir(parents=True, exist_ok=True)
        version = f"v{time.time_ns()}"
        tmp = root / f".{version}.tmp"
        tmp.mkdir()
        rows = sorted(self.chunks)
        _write_jsonl(tmp / "documents.jsonl", ({"id": d.doc_id, "title": d.title, "text": d.text, "source": d.source} for d in self.documents.values()))
        _write_jsonl(tmp / "chunks.jsonl", ({"row": r, **self.chunks[r].to_dict()} for r in rows))
        _write_jsonl(tmp / "tokens.jsonl", (self.tokens[r] for r in rows))
        sv = [self.sentence_vectors[r] for r in rows]
        np.save(tmp / "sentences.npy", np.concatenate(sv) if sv else np.zeros((0, self.encoder.dim), np.float16))
        self.dense.save(tmp / "dense.faiss")
        self.retriever.keyword.save(tmp / "bm25")
        self.build_seconds["write"] = time.perf_counter() - t0
        (tmp / "manifest.json").write_text(json.dumps(self.manifest(), ensure_ascii=False, indent=2), "utf-8")
        tmp.rename(root / version)
        pointer = root / f".CURRENT.{os.getpid()}"
        pointer.write_text(version, "utf-8")
        old = _current_version(root)
        os.replace(pointer, root / "CURRENT")  # the atomic switch
        if old and old != version:
            shutil.rmtree(root / old, ignore_errors=True)
        for stale in root.glob(".v*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        return root

    @classmethod
    def open(cls, path: str | Path, config: Config | None = None) -> "KnowledgeBase":
        root = Path(path)
        version = _current_version(root)
        if not version:
            raise FileNotFoundError(f"{root}: no knowledge base here. Build one with `rag index SRC... --out {root}`.")
        folder = root / version
        manifest = read_manifest(root)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"{root} was built by an older format (version {manifest.get('format_version')}, this program "
                f"reads {FORMAT_VERSION}). Rebuild it: `rag index SRC... --out {root}`."
            )
        # index-shaping settings come from the manifest; query-time ones from the caller/defaults
        built_with = {k: manifest["config"][k] for k in Config.INDEX_FIELDS if k in manifest["config"]}
        saved = dataclasses.replace(config or Config(), **built_with)
        if config is not None and config.model != saved.model:
            raise IndexMismatchError(
                f"{root} was built with model {saved.model!r}, not {config.model!r}; vectors from different models "
                f"cannot be mixed. Rebuild it: `rag index SRC... --out {root} --model {config.model}`, "
                f"or open it without choosing a model."
            )
        kb = cls(saved, root)
        if kb.encoder.dim != manifest["dim"]:
            raise IndexMismatchError(f"{root}: model dimension {kb.encoder.dim} != index dimension {manifest['dim']}; rebuild it.")
        for row in _read_jsonl(folder / "documents.jsonl"):
            kb.documents[row["id"]] = Document(row["id"], row["text"], row["title"], row.get("source", ""))
        sentences = np.load(folder / "sentences.npy")
        offset = 0
        rows = []
        for row in _read_jsonl(folder / "chunks.jsonl"):
            r = row.pop("row")
            chunk = Chunk.from_dict(row)
            kb.chunks[r] = chunk
            kb._row_of[chunk.chunk_id] = r
            kb.sentence_vectors[r] = sentences[offset : offset + len(chunk.sentences)]
            offset += len(chunk.sentences)
            rows.append(r)
        for r, toks in zip(rows, _read_jsonl(folder / "tokens.jsonl")):
            kb.tokens[r] = toks
        kb._next_row = max(rows) + 1 if rows else 0
        kb.build_seconds = manifest.get("last_build_seconds", {})
        kb.dense = DenseIndex.load(folder / "dense.faiss", **kb._dense_params())
        kb._retriever = HybridRetriever(
            kb.dense, KeywordIndex.load(folder / "bm25", len(rows)), np.array(rows, np.int64)
        )
        return kb


def open_or_build(path: str | Path, documents: list[Document], config: Config | None = None) -> KnowledgeBase:
    """Open the index at `path` if it was built from these documents with these index settings,
    else (re)build it there. Query-time settings never force a rebuild."""
    config = config or Config()
    try:
        manifest = read_manifest(Path(path))
        built = {k: manifest["config"].get(k) for k in Config.INDEX_FIELDS}
        if manifest.get("corpus_fingerprint") == fingerprint(documents) and built == config.index_settings():
            return KnowledgeBase.open(path, config)
    except (FileNotFoundError, IndexMismatchError, KeyError, ValueError):
        pass
    kb = KnowledgeBase(config, path)
    kb.add_documents(documents, progress=True)
    kb.save()
    return kb


def _shift(chunk: Chunk) -> list[tuple[int, int]]:
    """Sentence spans inside `chunk.context()` (the title line comes first)."""
    head = len(chunk.context()) - len(chunk.text)
    return [(a + head, b + head) for a, b in chunk.sentence_spans]


def fingerprint(docs: Iterable[Document]) -> str:
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.doc_id):
        h.update(d.doc_id.encode() + b"\0" + d.title.encode() + b"\0" + d.text.encode() + b"\1")
    return h.hexdigest()[:16]


def _current_version(root: Path) -> str | None:
    try:
        version = (root / "CURRENT").read_text("utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return version if (root / version).is_dir() else None


def read_manifest(root: Path) -> dict:
    version = _current_version(root)
    if not version:
        raise FileNotFoundError(f"{root}: no knowledge base here.")
    return json.loads((root / version / "manifest.json").read_text("utf-8"))


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)
