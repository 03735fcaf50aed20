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

from .chunking import Chunk, repaired
from .config import Config
from .schema import Answer, Citation, Hit

NUM = r"\d+(?:[.,]\d+)*(?:多|余)?"
MEASURE = (
    "亿元|万元|元|美元|平方公里|平方米|公里|千米|米|亩|公斤|千克|吨|家次|人次|个百分点|个|家|人|名|项|条|场|次|起|处|"
    "艘|户|套|所|种|批|尾|年|岁|天|倍|件|台|辆|款|只|位|座|部|章|层|级|%|％|[A-Za-z]{1,3}\b"
)
UNIT = rf"(?:万亿|亿|万|千|百)?(?:{MEASURE})?"
QUANTITY = re.compile(
    rf"(?:约|近|超过|超|逾)?{NUM}{UNIT}(?:左右|以上|以下|多)?|[一二三四五六七八九十百千万两]+(?:个|家|项|条|名|次|年|大|种|批)"
)
_ASKED_UNIT = re.compile(rf"(?:多少|几)({MEASURE}|钱)")
_YEAR_SPAN = re.compile(r"^\d{4}年$")
DATE = re.compile(
    r"\d{4}年(?:\d{1,2}月(?:\d{1,2}日)?)?(?:至\d{1,2}月?\d{1,2}日)?|\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?|"
    r"(?:\d{1,2}月)?(?:上旬|中旬|下旬|底|初)|今年|去年|明年|近日|日前"
)
QUESTION_TYPES = (
    ("date", re.compile(r"何时|什么时候|哪一?天|哪一?年|几月|哪个月|日期|时间是")),
    ("quantity", re.compile(r"多少|几|多大|多长|多高|多远|多重|比重|占比|增长了?多|百分之")),
    ("person", re.compile(r"谁|哪位|什么人|姓名|记者是")),
    ("place", re.compile(r"哪里|哪儿|在哪|什么地方|何地|哪个(?:城市|区|省|国家|地方)")),
    ("list", re.compile(r"哪些|包括什么|有什么|分别")),
    ("which", re.compile(r"哪个|哪家|哪一|什么|何种|是啥")),
)
_QUESTION_WORDS = re.compile(
    r"多少|几[个家项条名次年月天]?|什么时候|什么|哪些|哪个|哪里|哪儿|哪一?[天年个家位]?|谁|何时|何地|如何|怎么样?|为什么|是否|吗|呢|？|\?"
)
_CLAUSE = re.compile(r"[，,；;。！？!?：:]")
_YEAR = re.compile(r"(?:19|20)\d{2}年?")


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
    return set(tokenizer(_QUESTION_WORDS.sub(" ", question)))


def question_type(question: str) -> str | None:
    for name, pattern in QUESTION_TYPES:
        if pattern.search(question):
            return name
    return None


class AnswerComposer:
    """Extractive answers with verbatim, offset-checked citations."""

    def __init__(self, config: Config):
        self.config = config

    # -- scoring --------------------------------------------------------------------------
    def candidates(self, question, qvec, chunks, sentence_vectors, tokenizer, idf) -> list[Candidate]:
        """Every sentence of the top passages, with its features and score.

        Local rarity matters because the topic words (the entity the question is about)
        occur in every candidate sentence; the words that single out the answering
        sentence are the rarer ones among the candidates.
        """
        q_tokens = content_tokens(question, tokenizer)
        qtype = question_type(question)
        chunks = chunks[: self.config.answer_passages]
        sentences = []
        for rank, (chunk, svecs) in enumerate(zip(chunks, sentence_vectors)):
            dense = svecs.astype(np.float32) @ qvec if qvec is not None else np.zeros(len(chunk.sentence_spans))
            for i, (a, b) in enumerate(chunk.sentence_spans):
                text = chunk.text[a:b]
                sentences.append((rank, chunk, i, float(dense[i]), text, tokenizer.sentence_tokens(text) & q_tokens))
        n = len(sentences)
        local_df = Counter(t for *_, hits in sentences for t in hits)
        local = {t: math.log(1 + n / (1 + local_df[t])) for t in q_tokens}
        global_ = idf(q_tokens)
        total_local, total_global = sum(local.values()) or 1.0, sum(global_.values()) or 1.0
        out = []
        for rank, chunk, i, dense, text, hits in sentences:
            cand = Candidate(
                rank, chunk, i, dense,
                overlap=len(hits) / max(1, len(q_tokens)),
                idf_overlap=sum(global_[t] for t in hits) / total_global,
                local_overlap=sum(local[t] for t in hits) / total_local,
                typed=1.0 if qtype and _has_type(text, qtype, tokenizer) else 0.0,
            )
            cand.score = float(np.dot(self.config.sentence_weights, cand.features()))
            out.append(cand)
        out.sort(key=lambda c: -c.score)
        return out

    # -- composing ------------------------------------------------------------------------
    def compose(
        self, question, qvec, chunks, sentence_vectors, hits: list[Hit], documents, tokenizer, idf, focus=None
    ) -> Answer:
        """`question` is what was searched; `focus` the words the user typed (for a follow-up)."""
        cands = self.candidates(question, qvec, chunks, sentence_vectors, tokenizer, idf)
        evidence = " ".join(c.context() for c in chunks[: self.config.answer_passages])
        missing = missing_names(question, evidence, tokenizer)
        confidence = self.confidence(cands)
        if not cands or missing or confidence < self.config.abstain_below:
            return abstention(question, hits, missing)
        chosen = [cands[0]]
        for cand in cands[1:]:
            if len(chosen) >= self.config.max_quotes:
                break
            if cand.score >= cands[0].score - 0.08 and cand.chunk_rank == cands[0].chunk_rank:
                chosen.append(cand)
        citations = []
        for n, cand in enumerate(chosen, 1):
            start, end = cand.chunk.sentences[cand.index]
            doc = documents[cand.chunk.doc_id].text
            citations.append(Citation(n, cand.chunk.doc_id, cand.chunk.title, doc[start:end], start, end,
                                      round(cand.score, 4), cand.chunk.chunk_id))
        short = short_answer(question, citations[0].quote, focus)
        text = render(short, citations)
        return Answer(question, text, short, False, citations, hits, searched=question)

    @staticmethod
    def confidence(cands: list[Candidate]) -> float:
        """Evidence strength of the best sentence on an absolute scale (model-specific)."""
        if not cands:
            return 0.0
        return cands[0].dense + 0.1 * cands[0].overlap

def abstention(question: str, hits: list[Hit], missing: list[str] | None = None) -> Answer:
    """The plain "not in the documents" answer, with the closest passages for the reader to check."""
    lines = ["文档中没有找到这个问题的答案。"]
    if missing:
        lines[0] = f"文档中没有找到这个问题的答案：资料没有提到“{'、'.join(missing)}”。"
    if hits:
        lines.append("最接近的段落：")
        lines += [f"- 《{h.title}》{_clip(h.text)}" for h in hits[:3]]
    return Answer(question, "\n".join(lines), None, True, [], hits, searched=question)


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


def render(short: str | None, citations: list[Citation]) -> str:
    lines = [f"答案：{short}" if short else "根据资料："]
    for c in citations:
        lines.append(f"[{c.n}] “{repaired(c.quote)}” ——《{c.title}》")
    return "\n".join(lines)


def _has_type(text: str, qtype: str, tokenizer) -> bool:
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


_GENERIC_PLACES = set("城市 国家 地区 地方 大洋 大陆 省份 首都 省会 县城 乡村 海外 国内 国外 全国 全省 全市 本市".split())


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
        if flag not in ("ns", "nt", "nr", "nz") or len(word) < 2 or word in _GENERIC_PLACES or word in evidence:
            continue
        if len(word) > 2 and word[-1] in "市省县区" and word[:-1] in evidence:
            continue  # 济南市 vs 济南
        if flag != "ns" and start >= 0 and sum(covered[start : start + len(word)]) * 2 >= len(word):
            continue  # a mis-tagged fragment of words the evidence does contain
        names.append(word)
    for year in _YEAR.findall(question):
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
    asked = _ASKED_UNIT.search(question)
    unit = "元" if asked and asked.group(1) == "钱" else (asked.group(1) if asked else None)
    wants_day = bool(re.search(r"哪一?天|几月几[日号]|什么时候|何时|日期", question))
    best, best_score = None, None
    for m in pattern.finditer(quote):
        span = m.group()
        if not span or span in question or not re.search(r"\d|[一二三四五六七八九十两]|年|日|旬|底|初", span):
            continue
        if qtype == "quantity" and quote[m.end() : m.end() + 1] in ("月", "日", "号", "+", "．"):
            continue  # part of a date (1月18日) or a name (10+1), not a quantity
        # the answer sits where the question's words are: count them just before and after it
        left = _CLAUSE.split(quote[max(0, m.start() - 25) : m.start()])[-1][::-1]
        right = _CLAUSE.split(quote[m.end() : m.end() + 10])[0]
        score = _nearness(left[::-1], anchors, reverse=True) + 0.5 * _nearness(right, anchors)
        if unit and unit in span:
            score += 2.0  # 多少家 → a count of 家
        if qtype == "quantity" and _YEAR_SPAN.match(span):
            score -= 3.0  # a year is rarely the answer to 多少
        if qtype == "quantity" and span.isdigit():
            score -= 1.5  # a bare number without a unit is a weak answer
        if qtype == "date" and wants_day:
            score += 1.0 if "日" in span else -2.0 if _YEAR_SPAN.match(span) else 0.0
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
    parts = re.split(r"[，。？?、\s]|" + _QUESTION_WORDS.pattern, question)
    out = []
    for p in parts:
        p = p.strip("是了的在有为达")
        if len(p) >= 2:
            out.extend(p[i : i + 2] for i in range(len(p) - 1))
    return out
