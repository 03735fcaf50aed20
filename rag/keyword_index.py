"""Keyword search: BM25 (bm25s) over jieba words plus CJK character bigrams.

jieba alone misses when question and passage segment a phrase differently
(进出口总值 vs 进出口/总值); character bigrams catch those, jieba words keep
whole terms and Latin words. Together they beat either alone on CMRC 2018.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from .zh import STOP_WORDS

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
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
    """bm25s sets its own logger to DEBUG on import; keep its "Building index" lines out of user output."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class KeywordIndex:
    """BM25 over token lists; rebuilt from stored tokens when documents change."""

    def __init__(self, tokens: list[list[str]]):
        bm25s = _import_bm25s()
        self.size = len(tokens)
        self._bm25 = bm25s.BM25()
        if tokens:
            self._bm25.index([t or [""] for t in tokens], show_progress=False)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every indexed chunk for the query (0 where no term matches)."""
        if not self.size:
            return np.zeros(0, np.float32)
        vocab = self._bm25.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        if not known:
            return np.zeros(self.size, np.float32)
        return np.asarray(self._bm25.get_scores(known), np.float32)

    def idf(self, tokens: set[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each token (document frequency from the index)."""
        if not self.size:
            return {t: 0.0 for t in tokens}
        vocab, indptr = self._bm25.vocab_dict, self._bm25.scores["indptr"]
        out = {}
        for t in tokens:
            col = vocab.get(t)
            df = int(indptr[col + 1] - indptr[col]) if col is not None else 0
            out[t] = float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))
        return out

    def save(self, path: Path) -> None:
        if self.size:
            self._bm25.save(str(path), show_progress=False)

    @classmethod
    def load(cls, path: Path, size: int) -> KeywordIndex:
        bm25s = _import_bm25s()

        index = cls.__new__(cls)
        index.size = size
        index._bm25 = bm25s.BM25.load(str(path), show_progress=False) if size else bm25s.BM25()
        return index
