"""Answer composer: pick the sentences that answer, quote them verbatim, or abstain.

Each sentence of the top passages is scored by
  dense   – cosine of the question to the sentence's late-chunked vector,
  overlap – share of the question's words/bigrams the sentence contains,
  passage – how well its passage ranked,
  type    – whether it holds the kind of thing asked for (a number for 多少, a date for 何时…).
The best sentence is quoted as `document[start:end]`; a short answer span is cut
from it by question type. The composer abstains when the evidence is weak or the
question names a place, body or year that the evidence never mentions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .chunking import Chunk
from .config import Config
from .evidence import Evidence
from .schema import Answer, Citation
from .zh import (
    ASKED_UNIT,
    ASKS_FOR_DAY,
    CLAUSE_BREAK,
    DATE,
    GENERIC_PLACES,
    QUANTITY,
    QUESTION_WORDS,
    YEAR,
    YEAR_ONLY,
    question_type,
    strip_question_words,
)

NOT_A_QUANTITY_BEFORE = ("月", "日", "号", "．")  # 1月18日 is a date, not a quantity


@dataclass
class Candidate:
    chunk_rank: int
    chunk: Chunk
    index: int  # sentence index inside the chunk
    dense: float  # cosine(question, late-chunked sentence vector)
    overlap: float  # share of the question's content tokens in the sentence
    idf_overlap: float  # the same share, weighted by corpus IDF
    local_overlap: float  # weighted by rarity among the candidate sentences
    typed: float  # holds the kind of thing asked for
    score: float = 0.0

    def features(self) -> list[float]:
        return [self.dense, self.overlap, self.idf_overlap, self.local_overlap, self.typed]


def content_tokens(question: str, tokenizer) -> set[str]:
    """The question's tokens without its question words (多少, 哪些, 谁…) or bigrams across them."""
    return set(tokenizer(strip_question_words(question)))


class AnswerComposer:
    """Extractive answers with verbatim, offset-checked citations."""

    def __init__(self, config: Config):
        self.config = config

    # -- scoring --------------------------------------------------------------------------
    def candidates(self, evidence: Evidence) -> list[Candidate]:
        """Every sentence of the top passages, with its features and score.

        Local rarity matters because the topic words (the entity the question is about)
        occur in every candidate sentence; the words that single out the answering
        sentence are the rarer ones among the candidates.
        """
        tokenizer, qvec = evidence.tokenizer, evidence.query_vector
        q_tokens = content_tokens(evidence.question, tokenizer)
        qtype = question_type(evidence.question)
        sentences = []
        for rank, (chunk, svecs) in enumerate(
            zip(evidence.chunks[: self.config.answer_passages], evidence.sentence_vectors)
        ):
            dense = svecs.astype(np.float32) @ qvec if qvec is not None else np.zeros(len(chunk.sentence_spans))
            for i, (a, b) in enumerate(chunk.sentence_spans):
                text = chunk.text[a:b]
                sentences.append((rank, chunk, i, float(dense[i]), text, tokenizer.sentence_tokens(text) & q_tokens))
        n = len(sentences)
        local_df = Counter(t for *_, hits in sentences for t in hits)
        local = {t: math.log(1 + n / (1 + local_df[t])) for t in q_tokens}
        global_ = evidence.idf(q_tokens)
        total_local, total_global = sum(local.values()) or 1.0, sum(global_.values()) or 1.0
        out = []
        for rank, chunk, i, dense, text, hits in sentences:
            cand = Candidate(
                rank,
                chunk,
                i,
                dense,
                overlap=len(hits) / max(1, len(q_tokens)),
                idf_overlap=sum(global_[t] for t in hits) / total_global,
                local_overlap=sum(local[t] for t in hits) / total_local,
                typed=1.0 if qtype and has_type(text, qtype, tokenizer) else 0.0,
            )
            cand.score = float(np.dot(self.config.sentence_weights, cand.features()))
            out.append(cand)
        out.sort(key=lambda c: -c.score)
        return out

    # -- composing ------------------------------------------------------------------------
    def compose(self, evidence: Evidence) -> Answer:
        question = evidence.question
        cands = self.candidates(evidence)
        passages = " ".join(c.indexed_text() for c in evidence.chunks[: self.config.answer_passages])
        missing = missing_names(question, passages, evidence.tokenizer)
        confidence = self.confidence(cands)
        if not cands or missing or confidence < self.config.abstain_below:
            return evidence.abstain(missing)
        chosen = [cands[0]]
        for cand in cands[1:]:
            if len(chosen) >= self.config.max_quotes:
                break
            if cand.score >= cands[0].score - 0.08 and cand.chunk_rank == cands[0].chunk_rank:
                chosen.append(cand)
        citations = []
        for n, cand in enumerate(chosen, 1):
            start, end = cand.chunk.sentences[cand.index]
            doc = evidence.text_of(cand.chunk.doc_id)
            citations.append(
                Citation(
                    n,
                    cand.chunk.doc_id,
                    cand.chunk.title,
                    doc[start:end],
                    start,
                    end,
                    round(cand.score, 4),
                    cand.chunk.chunk_id,
                )
            )
        return evidence.answered(short_answer(question, citations[0].quote, evidence.focus), citations)

    @staticmethod
    def confidence(cands: list[Candidate]) -> float:
        """Evidence strength of the best sentence on an absolute scale (model-specific)."""
        if not cands:
            return 0.0
        return cands[0].dense + 0.1 * cands[0].overlap


def has_type(text: str, qtype: str, tokenizer) -> bool:
    """Does the sentence hold the kind of thing the question asks for?"""
    if qtype == "quantity":
        return bool(re.search(r"\d", text))
    if qtype == "date":
        return bool(DATE.search(text))
    if qtype == "list":
        return "、" in text or bool(re.search(r"包括|分别|以及", text))
    if qtype in ("person", "place"):
        wanted = {"person": ("nr",), "place": ("ns", "nt")}[qtype]
        return any(flag in wanted for _, flag in tokenizer.tagged(text))
    return False


def missing_names(question: str, evidence: str, tokenizer) -> list[str]:
    """Places, organisations, people and years the question names but the evidence lacks.

    jieba's tags are noisy (张静美的 → 美的/nt), so a name counts as missing only when
    most of its characters are not covered by question fragments the evidence contains.
    """
    covered = _covered_chars(question, evidence)
    names, pos = [], 0
    for word, flag in tokenizer.tagged(question):
        start = question.find(word, pos)
        pos = start + len(word) if start >= 0 else pos
        if flag not in ("ns", "nt", "nr", "nz") or len(word) < 2 or word in GENERIC_PLACES or word in evidence:
            continue
        if len(word) > 2 and word[-1] in "市省县区" and word[:-1] in evidence:
            continue  # 济南市 vs 济南
        if flag != "ns" and start >= 0 and sum(covered[start : start + len(word)]) * 2 >= len(word):
            continue  # a mis-tagged fragment of words the evidence does contain
        names.append(word)
    for year in YEAR.findall(question):
        if year.rstrip("年") not in evidence:
            names.append(year)
    return names


def _covered_chars(question: str, evidence: str) -> list[bool]:
    """Which characters of the question lie in a 2+ character fragment found in the evidence."""
    covered = [False] * len(question)
    for i in range(len(question) - 1):
        if question[i : i + 2] in evidence:
            covered[i] = covered[i + 1] = True
    return covered


def short_answer(question: str, quote: str, focus: str | None = None) -> str | None:
    """The shortest span of the quote that answers, for questions that ask for one.

    The kind of span comes from `question`; where to look in the quote from `focus`
    (the follow-up the user typed) when given.
    """
    qtype = question_type(focus or "") or question_type(question)
    question = focus or question
    if qtype == "quantity":
        pattern = QUANTITY
    elif qtype == "date":
        pattern = DATE
    else:
        return None
    anchors = set(_anchor_words(question))
    asked = ASKED_UNIT.search(question)
    unit = "元" if asked and asked.group(1) == "钱" else (asked.group(1) if asked else None)
    wants_day = bool(ASKS_FOR_DAY.search(question))
    best, best_score = None, None
    for m in pattern.finditer(quote):
        span = m.group()
        if not span or span in question or not re.search(r"\d|[一二三四五六七八九十两]|年|日|旬|底|初", span):
            continue
        if qtype == "quantity" and quote[m.end() : m.end() + 1] in NOT_A_QUANTITY_BEFORE:
            continue  # part of a date (1月18日) or a name (10+1), not a quantity
        # the answer sits where the question's words are: count them just before and after it
        left = CLAUSE_BREAK.split(quote[max(0, m.start() - 25) : m.start()])[-1][::-1]
        right = CLAUSE_BREAK.split(quote[m.end() : m.end() + 10])[0]
        score = _nearness(left[::-1], anchors, reverse=True) + 0.5 * _nearness(right, anchors)
        if unit and unit in span:
            score += 2.0  # 多少家 → a count of 家
        if qtype == "quantity" and YEAR_ONLY.match(span):
            score -= 3.0  # a year is rarely the answer to 多少
        if qtype == "quantity" and span.isdigit():
            score -= 1.5  # a bare number without a unit is a weak answer
        if qtype == "date" and wants_day:
            score += 1.0 if "日" in span else -2.0 if YEAR_ONLY.match(span) else 0.0
        if best_score is None or (score, -m.start()) > best_score:
            best, best_score = span, (score, -m.start())
    return best


def _nearness(context: str, anchors: set[str], reverse: bool = False) -> float:
    """Question bigrams found in `context`, each worth less the farther it is from the span."""
    total, seen = 0.0, set()
    n = len(context)
    for i in range(n - 1):
        gram = context[i : i + 2]
        if gram in anchors and gram not in seen:
            seen.add(gram)
            distance = (n - i - 2) if reverse else i
            total += 1.0 / (1.0 + distance / 10.0)
    return total


def _anchor_words(question: str) -> list[str]:
    """Question fragments (between question words) used to locate the answer in a quote."""
    parts = re.split(r"[，。？?、\s]|" + QUESTION_WORDS.pattern, question)
    out: list[str] = []
    for p in parts:
        p = p.strip("是了的在有为达")
        if len(p) >= 2:
            out.extend(p[i : i + 2] for i in range(len(p) - 1))
    return out
