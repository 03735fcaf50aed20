"""`KnowledgeBase`: documents → chunks → dense + keyword indexes → evidence → answer.

The one entry class: build, add, remove, search and answer. Storage on disk (versioned,
atomic) is `store.py`'s job; choosing the answer is the composer's (`composers.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from . import page_view, store
from .chunk_index import ChunkIndex, empty_index
from .chunking import Chunk, Chunker
from .composers import create_composer
from .config import Config, RetrievalMode, StoreKind
from .conversation import contextualize, restate
from .documents import SUPPORTED_SUFFIXES, Document, DocumentError, iter_files, load_documents, read_path
from .embedding import EncodedChunks, shared_encoder
from .evidence import Evidence
from .keyword_index import shared_tokenizer
from .paths import file_sha256, index_root
from .retriever import HybridRetriever, Ranked
from .schema import Answer, Citation, Hit
from .store import FORMAT_VERSION, IndexMismatchError, StoredIndex, read_manifest
from .zh import to_simplified, to_traditional, traditional_share

log = logging.getLogger(__name__)

# a knowledge base whose sampled text changes this much under Simplified conversion is Traditional:
# DRCD's Traditional contexts 0.33, its Simplified copy 0.0, CMRC 2018 0.0002, the bundled page 0.0
TRADITIONAL_SHARE = 0.05
SCRIPT_SAMPLE_CHUNKS = 200
MAX_QUESTION_CHARS = 2000  # no model reads past 512 tokens; a longer "question" is a mistake or an attack
MAX_K = 100


def check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty; type a question, e.g. 2024年青岛市进出口总值是多少？")
    question = question.strip()
    if not any(ch.isalnum() for ch in question):  # 「？？？」 or an emoji: nothing to search for or read
        raise ValueError(
            f"the question {question[:20]!r} has no words, only punctuation or symbols; "
            "type a question, e.g. 2024年青岛市进出口总值是多少？"
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is {len(question)} characters long; ask in at most {MAX_QUESTION_CHARS}.")
    return question


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}.")
    return k


class ChunkEncoder(Protocol):
    def encode_chunks(
        self, texts: list[str], sentence_spans: list[list[tuple[int, int]]], *, progress: bool = False
    ) -> EncodedChunks: ...


class KnowledgeBase:
    """A searchable, answerable collection of documents.

    >>> kb = KnowledgeBase.build(["corpus/"], path="index/mykb")   # doctest: +SKIP
    >>> kb.answer("2024年青岛市进出口达多少亿元？").short              # doctest: +SKIP
    '9076.7亿元'
    """

    def __init__(self, config: Config | None = None, path: str | Path | None = None, stored: StoredIndex | None = None):
        """An empty knowledge base, or the one `stored` holds (see `open`)."""
        import fasteners

        self.config = config or Config()
        self.path = Path(path) if path else None
        # one encoder, tokenizer and reader per process, shared by every knowledge base that uses them;
        # jieba's dictionaries and the encoder load side by side: start-up is most of a first answer
        with ThreadPoolExecutor(1) as pool:
            tokenizer = pool.submit(shared_tokenizer, self.config.user_dict)
            c = self.config
            self.encoder = shared_encoder(c.model, c.device, c.max_seq_length, c.backend)
            self.tokenizer = tokenizer.result()
        self.composer = create_composer(self.config)
        # what encodes new chunks: the query encoder, or one that spreads the work (`ray_encoding`)
        self.chunk_encoder: ChunkEncoder = self.encoder
        # questions read while an update swaps the indexes in: they see the old or the new version
        self._rw = fasteners.ReaderWriterLock()
        if stored is None:
            stored = StoredIndex({}, {}, {}, {}, empty_index(self.encoder.dim, self.config, self.path), {})
        self._set_state(stored)

    def _set_state(self, stored: StoredIndex) -> None:
        self.documents: dict[str, Document] = stored.documents
        self.chunks: dict[int, Chunk] = stored.chunks  # row id -> chunk
        self.tokens: dict[int, list[str]] = stored.tokens
        self.sentence_vectors: dict[int, np.ndarray] = stored.sentence_vectors
        self.index: ChunkIndex = stored.index
        self._row_of = {c.chunk_id: r for r, c in self.chunks.items()}  # chunk id -> row id
        # row ids are never reused (a Milvus collection outlives versions): the next one is recorded
        self._next_row = max(int(stored.manifest.get("next_row", 0)), max(self.chunks, default=-1) + 1)
        self._retriever = self.index.retriever()
        self.build_seconds: dict[str, float] = dict(stored.manifest.get("last_build_seconds", {}))
        self._version = stored.version  # the saved version this state is (None: never saved)
        self._script: tuple[tuple[int, int], bool] | None = None  # (chunks, next row) -> traditional?

    # ---- building -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        sources: Iterable[str | Path],
        path: str | Path | None = None,
        config: Config | None = None,
        progress: bool = False,
        chunk_encoder: ChunkEncoder | None = None,
    ) -> KnowledgeBase:
        """A new knowledge base from files and folders (replacing any saved at `path`); `chunk_encoder`
        encodes the chunks instead of the knowledge base's own encoder (e.g. `RayChunkEncoder`)."""
        docs = load_documents(sources)
        if not docs:
            raise ValueError(
                "no readable documents in the given sources (.txt, .md, .jsonl, .pdf, .docx or .html files)."
            )
        kb = cls(config, path)
        if chunk_encoder is not None:
            kb.chunk_encoder = chunk_encoder
        kb.add_documents(docs, progress=progress)
        if path:
            kb.save()
        return kb

    def add(self, sources: Iterable[str | Path], progress: bool = False) -> list[str]:
        """Add files/folders; documents whose id exists are replaced. Returns the ids added."""
        docs = load_documents(sources)
        self.update(add=docs, progress=progress)
        return [d.doc_id for d in docs]

    def sync(self, sources: Iterable[str | Path], progress: bool = False) -> dict[str, list[str]]:
        """Bring the knowledge base in line with files and folders, as one update: files whose content
        changed (by SHA-256) or that are new are read again, unchanged ones are not, and documents whose
        file is gone from a synced folder leave. Returns the ids added, removed and unchanged, and the
        files that could not be read."""
        files: dict[Path, str] = {}  # file -> the document id its first document gets
        roots = []
        for source in sources:
            root = Path(source)
            if not root.exists():
                raise FileNotFoundError(f"{root}: no such file or folder. Check the path and try again.")
            roots.append(root.resolve())
            for path in iter_files(root):
                if path.suffix.lower() in SUPPORTED_SUFFIXES:
                    files[path] = path.name if path == root else path.relative_to(root).as_posix()
        by_source: dict[Path, list[Document]] = {}
        for doc in self.documents.values():
            if doc.source:
                by_source.setdefault(Path(doc.source).resolve(), []).append(doc)
        add: list[Document] = []
        remove: list[str] = []
        unchanged: list[str] = []
        failed: list[str] = []
        for path, doc_id in files.items():
            old = by_source.get(path.resolve(), [])
            digest = file_sha256(path) if old else ""  # hashed once per file, not once per document
            if old and all(d.digest == digest for d in old):
                unchanged += [d.doc_id for d in old]
                continue
            try:
                new = read_path(path, doc_id)
            except DocumentError as exc:
                failed.append(str(exc))
                continue
            add += new
            remove += [d.doc_id for d in old if d.doc_id not in {n.doc_id for n in new}]
        present = {p.resolve() for p in files}
        for source, docs in by_source.items():
            if source not in present and any(source.is_relative_to(r) for r in roots):
                remove += [d.doc_id for d in docs]
        self.update(add=add, remove=remove, progress=progress)
        return {"added": [d.doc_id for d in add], "removed": remove, "unchanged": unchanged, "failed": failed}

    def remove(self, doc_ids: Iterable[str]) -> None:
        self.update(remove=list(doc_ids))

    def update(self, add: Iterable[Document] = (), remove: Iterable[str] = (), progress: bool = False) -> None:
        """Add (or replace) and remove documents as one change.

        With a path, the change is made under the knowledge base's write lock on top of the newest
        saved version (another process may have saved since this one opened it), then saved: two
        writers never lose each other's documents.
        """
        add, remove = list(add), list(remove)
        if self.path is None:
            self._apply(add, remove, progress)
            return
        with store.write_lock(self.path):
            self.refresh()  # start from the newest saved version
            self.index.discard_from(self._next_row)  # rows a writer that died before its switch left
            self._apply(add, remove, progress)
            self._save_locked(self.path)

    def add_documents(self, docs: list[Document], progress: bool = False) -> None:
        """Add (or replace) documents in memory; `save()` or `update()` writes them."""
        self._apply(docs, [], progress)

    def _apply(self, add: list[Document], remove: list[str], progress: bool) -> None:
        missing = [d for d in remove if d not in self.documents]
        if missing:
            raise KeyError(f"no documents with ids {missing[:5]} in this knowledge base")
        t0 = time.perf_counter()
        chunker = Chunker(self.config.chunk_max_chars, self.config.chunk_min_chars)
        new_chunks = [c for d in add for c in chunker.split(d)]
        tokens = [self.tokenizer(c.indexed_text()) for c in new_chunks]
        t1 = time.perf_counter()
        # encoding (the slow part) happens before the swap, so questions keep their answers meanwhile
        encoded = self.chunk_encoder.encode_chunks(
            [c.indexed_text() for c in new_chunks], [c.indexed_sentence_spans() for c in new_chunks], progress=progress
        )
        t2 = time.perf_counter()
        with self._rw.write_lock():
            removed = self._drop(set(remove) | {d.doc_id for d in add if d.doc_id in self.documents})
            rows = np.arange(self._next_row, self._next_row + len(new_chunks))
            self._next_row += len(new_chunks)
            for doc in add:
                self.documents[doc.doc_id] = doc
            for row, chunk, toks, svec in zip(rows, new_chunks, tokens, encoded.sentence_vectors):
                self.chunks[int(row)] = chunk
                self._row_of[chunk.chunk_id] = int(row)
                self.tokens[int(row)] = toks
                self.sentence_vectors[int(row)] = svec
            self.index.apply(rows, encoded.vectors, new_chunks, self.tokens, removed)
            self._retriever = self.index.retriever()
            if self.path is None:
                self.index.committed()  # nothing to save first
        self.build_seconds = {"parse_chunk": t1 - t0, "encode": t2 - t1, "chunks": len(new_chunks)}

    def choose_answer_step(self, composer: str | None = None, reader_precision: str | None = None) -> None:
        """Switch how answers are chosen (query-time settings; the indexes are untouched). None keeps
        the current setting; an unchanged choice keeps the loaded composer."""
        chosen = self.config.replace(composer=composer, reader_precision=reader_precision)
        if chosen != self.config:
            self.config = chosen
            self.composer = create_composer(chosen)

    def refresh(self) -> bool:
        """Load the version another process saved since this one was read (a second server worker,
        `rag index --add`); True if there was one. Costs one small file read."""
        if self.path is None or store.current_version(self.path) in (None, self._version):
            return False
        stored = store.load(self.path, self.config)
        with self._rw.write_lock():
            self._set_state(stored)
        return True

    def _drop(self, doc_ids: set[str]) -> np.ndarray:
        """Forget the documents' chunks; return their rows (for the index to drop)."""
        rows = [r for r, c in self.chunks.items() if c.doc_id in doc_ids]
        for r in rows:
            del self._row_of[self.chunks[r].chunk_id]
            del self.chunks[r], self.tokens[r], self.sentence_vectors[r]
        for d in doc_ids:
            del self.documents[d]
        return np.array(rows, np.int64)

    # ---- querying -----------------------------------------------------------------------
    @property
    def model(self):
        """The SentenceTransformer behind the encoder (loaded on first access; questions and chunks are
        encoded by `kb.encoder`, which runs ONNX Runtime unless `Config.backend` is `torch`)."""
        return self.encoder.model

    def document(self, doc_id: str) -> str:
        try:
            return self.documents[doc_id].text
        except KeyError:
            raise KeyError(f"no document {doc_id!r} in this knowledge base") from None

    def page_image(self, citation: Citation, width: int = 900) -> bytes | None:
        """The page of a PDF or image the citation quotes, with the quote highlighted (JPEG); None
        for documents without pages, or when the original is no longer there to render."""
        doc = self.documents.get(citation.doc_id)
        if doc is None or not doc.boxes:
            return None
        page, rects = doc.boxes_of(citation.start, citation.end)
        kept = store.original(self.path, doc) if self.path else None
        source = kept or Path(doc.source)
        if page is None or not source.is_file():
            return None
        try:
            return page_view.render(source, page, rects, width)
        except page_view.PageViewError as exc:
            log.warning("cannot show page %s of %s: %s", page, doc.doc_id, exc)
            return None

    def chunk(self, chunk_id: str) -> Chunk | None:
        row = self._row_of.get(chunk_id)
        return None if row is None else self.chunks[row]

    @property
    def retriever(self) -> HybridRetriever:
        return self._retriever

    def is_traditional(self) -> bool:
        """Whether the documents are in Traditional characters (judged on a sample of chunks,
        again after every update)."""
        key = (len(self.chunks), self._next_row)
        if self._script is None or self._script[0] != key:
            rows = sorted(self.chunks)
            sample = rows[:: max(1, len(rows) // SCRIPT_SAMPLE_CHUNKS)][:SCRIPT_SAMPLE_CHUNKS]
            self._script = key, traditional_share(self.chunks[r].text for r in sample) >= TRADITIONAL_SHARE
        return self._script[1]

    def in_documents_script(self, question: str) -> str:
        """`question` in the documents' script: a question typed in Traditional characters finds
        Simplified documents (and the reader, trained on Simplified text, reads it), and the other
        way round; the answer quotes the documents as they are."""
        return to_traditional(question) if self.is_traditional() else to_simplified(question)

    def _asked(self, question: str) -> str:
        """A question as searched and read: checked, then in the documents' script."""
        return self.in_documents_script(check_question(question))

    def _rank(self, question: str, k: int, mode: RetrievalMode, query_vector: np.ndarray | None) -> Ranked:
        """Callers encode the question first (outside the read lock); keyword mode needs no vector."""
        return self.retriever.retrieve(
            query_vector,
            self.tokenizer(question),
            k,
            mode,
            self.config.candidates,
            self.config.keyword_weight,
            self.config.fusion,
            question,
        )

    def search(self, question: str, k: int | None = None, mode: str | RetrievalMode | None = None) -> list[Hit]:
        question = self._asked(question)
        k = check_k(self.config.top_k if k is None else k)
        mode = RetrievalMode.parse(mode or self.config.mode)
        vector = None if mode is RetrievalMode.KEYWORD else self.encoder.encode_queries([question])[0]
        with self._rw.read_lock():
            ranked = self._rank(question, k, mode, vector)
            return self._hits(ranked)

    def evidence(
        self,
        question: str,
        k: int | None = None,
        mode: str | RetrievalMode | None = None,
        query_vector: np.ndarray | None = None,
        focus: str | None = None,
    ) -> Evidence:
        """What the answer step reads for `question`: the top `k` passages and what is known about them."""
        focus = None if focus is None else self.in_documents_script(focus)
        return self._evidence(self._asked(question), k, mode, query_vector, focus)

    def _evidence(
        self,
        question: str,
        k: int | None,
        mode: str | RetrievalMode | None,
        query_vector: np.ndarray | None,
        focus: str | None,
    ) -> Evidence:
        """`evidence` for a question (and focus) already checked and in the documents' script."""
        if query_vector is None:  # the composers score sentences with it in every retrieval mode
            query_vector = self.encoder.encode_queries([question])[0]
        k = check_k(max(self.config.top_k, self.config.answer_passages) if k is None else k)
        with self._rw.read_lock():  # one consistent version, even while an update swaps in
            ranked = self._rank(question, k, RetrievalMode.parse(mode or self.config.mode), query_vector)
            rows = [int(r) for r in ranked.rows]
            chunks = [self.chunks[r] for r in rows]
            evidence = Evidence(
                question,
                focus or question,
                query_vector,
                chunks,
                [self.sentence_vectors[r] for r in rows],
                self._hits(ranked),
                {c.doc_id: self.documents[c.doc_id] for c in chunks},
                self.tokenizer,
                self.index.idf,
            )
        evidence.timings = ranked.timings
        return evidence

    def _hits(self, ranked) -> list[Hit]:
        hits = []
        for row, fused, dense, kw in zip(ranked.rows, ranked.fused, ranked.dense, ranked.keyword):
            c = self.chunks[int(row)]
            hits.append(
                Hit(
                    c.chunk_id,
                    c.doc_id,
                    c.title,
                    c.text,
                    c.start,
                    c.end,
                    float(fused),
                    None if np.isnan(dense) else float(dense),
                    None if np.isnan(kw) else float(kw),
                )
            )
        return hits

    def answer(
        self, question: str, mode: str | RetrievalMode | None = None, history: list[str] | None = None
    ) -> Answer:
        """Answer `question`; with `history` (earlier questions) a follow-up such as 「总投资多少？」
        is searched in the context of the last self-contained question (`Answer.searched`), and
        「2023年呢？」 is asked as that question about 2023 (`conversation.restate`)."""
        question = check_question(question)
        # follow-ups are recognised by Simplified patterns (rag.zh), whatever script they are typed in
        asked, previous = to_simplified(question), [to_simplified(h) for h in history or []]
        restated = restate(asked, previous)
        searched = restated or contextualize(asked, previous)
        answer = self.answer_many([searched], mode, focus=[restated or question])[0]
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
        questions = [self._asked(q) for q in questions]
        focus = questions if focus is None else [self.in_documents_script(f) for f in focus]
        mode = RetrievalMode.parse(mode or self.config.mode)
        t0 = time.perf_counter()
        vectors = self.encoder.encode_queries(questions)
        encode_each = (time.perf_counter() - t0) / max(1, len(questions))
        answers = []
        for question, vector, asked in zip(questions, vectors, focus):
            t1 = time.perf_counter()
            evidence = self._evidence(question, k, mode, vector, asked)
            t2 = time.perf_counter()
            answer = self.composer.compose(evidence)
            t3 = time.perf_counter()
            answer.timings = {"encode": encode_each, **evidence.timings, "retrieve": t2 - t1, "compose": t3 - t2}
            answers.append(answer)
        return answers

    # ---- persistence --------------------------------------------------------------------
    def manifest(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.config.model,
            "dim": self.encoder.dim,
            "corpus_fingerprint": fingerprint(self.documents.values()),
            "config": self.config.to_saved_dict(),
            "documents": len(self.documents),
            "chunks": len(self.chunks),
            "next_row": self._next_row,
            "dense_index": self.index.describe(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "last_build_seconds": self.build_seconds,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write this knowledge base as the newest version at `path` (default: its own path)."""
        root = Path(path or self.path or "")
        if not str(root):
            raise ValueError("no path to save to; pass path=...")
        with store.write_lock(root):
            self._save_locked(root)
        return root

    def _save_locked(self, root: Path) -> None:
        t0 = time.perf_counter()
        with self._rw.read_lock():
            stored = StoredIndex(
                self.documents,
                self.chunks,
                self.tokens,
                self.sentence_vectors,
                self.index,
                self.manifest(),
            )
            self._version = store.save(root, stored)
        self.path = root
        self.build_seconds["write"] = time.perf_counter() - t0

    def copy(self, path: str | Path, config: Config | None = None) -> KnowledgeBase:
        """This knowledge base saved at `path` in the store `config` names (e.g. Milvus), without encoding
        anything again: the same documents, chunks, vectors and row ids. Index settings other than the
        store's are this one's (vectors from another model cannot be carried over)."""
        target = config or self.config
        config = dataclasses.replace(
            self.config,
            store=target.store,
            uri=target.uri,
            token=target.token,
            milvus_keyword=target.milvus_keyword,
            dense_index=target.dense_index,
        )
        copy = KnowledgeBase(config, path)
        with self._rw.read_lock():
            rows = np.array(sorted(self.chunks), np.int64)
            tokens = dict(self.tokens)
            copy.index.apply(
                rows, self.index.dense.vectors(rows), [self.chunks[int(r)] for r in rows], tokens, rows[:0]
            )
            stored = StoredIndex(
                dict(self.documents),
                dict(self.chunks),
                tokens,
                dict(self.sentence_vectors),
                copy.index,
                {"next_row": self._next_row},
            )
        copy._set_state(stored)
        copy.build_seconds = dict(self.build_seconds)
        copy.save()
        return copy

    @classmethod
    def open(cls, path: str | Path, config: Config | None = None) -> KnowledgeBase:
        """The knowledge base saved at `path`. Settings that shaped the index come from its manifest;
        query-time ones from `config` (or the defaults)."""
        root = Path(path)
        manifest = read_manifest(root)
        built_with = {k: manifest["config"][k] for k in Config.INDEX_FIELDS if k in manifest.get("config", {})}
        saved = dataclasses.replace(config or Config(), **built_with)
        if config is not None and config.model != saved.model:
            raise IndexMismatchError(
                f"{root} was built with model {saved.model!r}, not {config.model!r}; vectors from different models "
                f"cannot be mixed. Rebuild it: `rag index SRC... --out {root} --model {config.model}`, "
                f"or open it without choosing a model."
            )
        stored = store.load(root, saved)
        if stored.index.dim != manifest["dim"]:
            raise IndexMismatchError(
                f"{root}: index dimension {stored.index.dim} != manifest {manifest['dim']}; rebuild it."
            )
        kb = cls(saved, root, stored)
        if kb.encoder.dim != manifest["dim"]:
            raise IndexMismatchError(
                f"{root}: model dimension {kb.encoder.dim} != index dimension {manifest['dim']}; rebuild it."
            )
        return kb


def open_or_build(path: str | Path, documents: list[Document], config: Config | None = None) -> KnowledgeBase:
    """Open the index at `path` if it was built from these documents with these index settings,
    else (re)build it there. Query-time settings never force a rebuild."""
    config = config or Config()
    try:
        manifest = read_manifest(Path(path))
        defaults = Config().index_settings()  # for settings added after the index was built
        built = {k: manifest["config"].get(k, defaults[k]) for k in Config.INDEX_FIELDS}
        if manifest.get("corpus_fingerprint") == fingerprint(documents) and built == config.index_settings():
            return KnowledgeBase.open(path, config)
    except (FileNotFoundError, IndexMismatchError, KeyError, ValueError):
        pass
    kb = KnowledgeBase(config, path)
    kb.add_documents(documents, progress=True)
    kb.save()
    return kb


EVAL_INDEX_PREFIX = "eval-"  # folders `open_eval_index` owns; servers never offer them as knowledge bases


def open_eval_index(name: str, documents: list[Document], config: Config | None = None) -> KnowledgeBase:
    """The index `rag eval` and the benchmarks keep for a dataset, one folder per model, backend and store
    (`index/eval-<name>-<model>-<backend>[-<store>-<keyword>]`), so settings never overwrite each other."""
    config = config or Config()
    where = "" if config.store is StoreKind.LOCAL else f"-{config.store}-{config.milvus_keyword}"
    slug = f"{config.model}-{config.backend}{where}".replace("/", "--")
    return open_or_build(index_root() / f"{EVAL_INDEX_PREFIX}{name}-{slug}", documents, config)


def fingerprint(docs: Iterable[Document]) -> str:
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.doc_id):
        h.update(d.doc_id.encode() + b"\0" + d.title.encode() + b"\0" + d.text.encode() + b"\1")
    return h.hexdigest()[:16]
