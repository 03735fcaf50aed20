"""Keyword search: BM25 (bm25s) over jieba words plus CJK character bigrams.

jieba alone misses when question and passage segment a phrase differently
(进出口总值 vs 进出口/总值); character bigrams catch those, jieba words keep
whole terms and Latin words. Together they beat either alone on CMRC 2018.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from .zh import CJK, STOP_WORDS

_CJK = re.compile(f"[{CJK}]")
_WORD = re.compile(r"\w", re.UNICODE)


class ChineseTokenizer:
    """jieba search-mode words (minus stop words and punctuation) + CJK bigrams."""

    def __init__(self, user_dict: str | None = None):
        import logging

        import jieba
        import jieba.posseg

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._pos = jieba.posseg.POSTokenizer(self._jieba)
        if user_dict:
            if not Path(user_dict).is_file():
                raise FileNotFoundError(f"jieba user dictionary {user_dict} not found; fix `user_dict` in the config.")
            self._jieba.load_userdict(user_dict)
        self._lock = threading.Lock()  # jieba's Tokenizer is not thread-safe
        # the composer re-reads the same top sentences question after question: remember them
        self.sentence_tokens = lru_cache(maxsize=100_000)(lambda text: frozenset(self(text)))
        self.tagged = lru_cache(maxsize=100_000)(self._tagged)

    def words(self, text: str) -> list[str]:
        with self._lock:
            raw = self._jieba.lcut_for_search(text)
        return [w.lower() for w in raw if w.strip() and _WORD.search(w) and w not in STOP_WORDS]

    def _tagged(self, text: str) -> tuple[tuple[str, str], ...]:
        """(word, part-of-speech) pairs; `ns` place, `nt` organisation, `nr` person."""
        with self._lock:
            return tuple((p.word, p.flag) for p in self._pos.lcut(text))

    def __call__(self, text: str) -> list[str]:
        tokens = self.words(text)
        cjk = "".join(ch if _CJK.match(ch) else " " for ch in text)
        for run in cjk.split():
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        return tokens


_shared_tokenizers: dict[str | None, ChineseTokenizer] = {}
_shared_lock = threading.Lock()


def shared_tokenizer(user_dict: str | None = None) -> ChineseTokenizer:
    """One jieba tokenizer per user dictionary in a process (jieba's model is large and slow to load)."""
    with _shared_lock:
        if user_dict not in _shared_tokenizers:
            _shared_tokenizers[user_dict] = ChineseTokenizer(user_dict)
        return _shared_tokenizers[user_dict]


def _import_bm25s():
    """bm25s, without numba, and with its logger (DEBUG on import) kept out of user output.

    bm25s imports numba whenever it is installed (ranx, the metrics library, pulls it in) to
    offer a JIT backend we never use: we score with its numpy path (`BM25_BACKEND`). That import
    costs 0.15-0.4 s of every new process's first answer, so numba is hidden from bm25s's import
    unless something already loaded it.
    """
    hide = "numba" not in sys.modules
    if hide:
        sys.modules["numba"] = None  # type: ignore[assignment]  # `from numba import njit` now raises ImportError
    try:
        import bm25s
    finally:
        if hide:
            del sys.modules["numba"]
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


BM25_BACKEND = "numpy"  # also for indexes saved with backend "numba" (older bm25s defaults)


def bm25_idf(n: int, df: int) -> float:
    """BM25's inverse document frequency (Lucene's form, as bm25s and Milvus compute it)."""
    return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the k best positive scores, best first."""
    if not len(scores):
        return np.zeros(0, np.int64), scores
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    top = top[scores[top] > 0]
    return top, scores[top]


class KeywordIndex:
    """BM25 over token lists, keyed by chunk row ids; rebuilt from stored tokens when documents change."""

    def __init__(self, tokens: list[list[str]], rows: np.ndarray | None = None):
        bm25s = _import_bm25s()
        self.size = len(tokens)
        self._bm25 = bm25s.BM25(backend=BM25_BACKEND)
        if tokens:
            self._bm25.index([t or [""] for t in tokens], show_progress=False)
        self._set_rows(np.arange(self.size, dtype=np.int64) if rows is None else np.asarray(rows, np.int64))

    def _set_rows(self, rows: np.ndarray) -> None:
        if len(rows) != self.size:
            raise ValueError(f"{len(rows)} row ids for {self.size} token lists")
        self.rows = rows  # BM25 position -> chunk row id
        self._position = np.full(int(rows.max()) + 1 if len(rows) else 0, -1, np.int64)
        self._position[rows] = np.arange(len(rows))

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every indexed chunk for the query, by position (0 where no term matches)."""
        if not self.size:
            return np.zeros(0, np.float32)
        vocab = self._bm25.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        if not known:
            return np.zeros(self.size, np.float32)
        return np.asarray(self._bm25.get_scores(known), np.float32)

    def search(
        self, query_tokens: list[str], k: int, also: np.ndarray | None = None, text: str = ""
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k best rows and their scores, and the scores of the rows in `also` (for fusion).
        `text` (the question) is for stores that tokenise it themselves; unused here."""
        every = self.scores(query_tokens)
        positions, top = top_k(every, k)
        also = np.zeros(0, np.int64) if also is None else np.asarray(also, np.int64)
        return self.rows[positions], top, every[self._position[also]] if len(also) else np.zeros(0, np.float32)

    def idf(self, tokens: set[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each token (document frequency from the index)."""
        if not self.size:
            return {t: 0.0 for t in tokens}
        vocab, indptr = self._bm25.vocab_dict, self._bm25.scores["indptr"]
        out = {}
        for t in tokens:
            col = vocab.get(t)
            out[t] = bm25_idf(self.size, int(indptr[col + 1] - indptr[col]) if col is not None else 0)
        return out

    def save(self, path: Path) -> None:
        if self.size:
            self._bm25.save(str(path), show_progress=False)

    @classmethod
    def load(cls, path: Path, rows: np.ndarray) -> KeywordIndex:
        bm25s = _import_bm25s()

        index = cls.__new__(cls)
        index.size = len(rows)
        index._bm25 = (
            bm25s.BM25.load(str(path), show_progress=False, override_params={"backend": BM25_BACKEND})
            if len(rows)
            else bm25s.BM25(backend=BM25_BACKEND)
        )
        index._set_rows(np.asarray(rows, np.int64))
        return index
