"""What the chat window shows: the reply (Markdown), the sources panel (HTML), example questions."""

from __future__ import annotations

import html
import re

from rag import Answer, KnowledgeBase
from rag.chunking import repaired
from rag.composer import QUANTITY, _YEAR_SPAN

CSS = """
.src-card {border:1px solid #d0d7de; border-radius:8px; padding:8px 10px; margin:0 0 10px 0; background:#fff;}
.src-card:target, .src-card.active {border-color:#d97706; box-shadow:0 0 0 2px #fde68a;}
.src-head {font-weight:600; margin-bottom:4px;}
.src-meta {color:#57606a; font-size:12px; margin-bottom:6px;}
.src-body {line-height:1.7; white-space:pre-wrap;}
.src-body mark {background:#fde68a; padding:0 1px;}
.abstain {border-left:4px solid #9ca3af; padding-left:8px; color:#374151;}
"""


def reply_markdown(answer: Answer) -> str:
    """The chat reply: bold short answer, quotes with [n] links to the sources panel.

    Document text is data: everything taken from a document is HTML-escaped, since the chat
    window renders HTML in replies.
    """
    esc = html.escape
    if answer.abstained:
        lines = ["> ⚠️ **文档中没有找到这个问题的答案。**", ">"]
        reason = answer.text.splitlines()[0]
        if "：" in reason:
            lines.append(f"> {esc(reason.split('：', 1)[1])}")
        if answer.passages:
            lines.append("> 最接近的段落（仅供参考，不是答案）：")
            for hit in answer.passages[:3]:
                lines.append(f"> - 《{esc(hit.title)}》{esc(_clip(hit.text))}")
        return "\n".join(lines)
    lines = [f"**答案：{esc(repaired(answer.short))}**", ""] if answer.short else ["根据资料：", ""]
    for c in answer.citations:
        lines.append(f"> {esc(repaired(c.quote))} <a href=\"#src-{c.n}\" title=\"{esc(c.title)}\">[{c.n}]</a>")
        lines.append(">")
    lines.append("")
    lines.append("来源：" + "；".join(f"[{c.n}]《{esc(c.title)}》" for c in answer.citations))
    return "\n".join(lines)


def sources_html(kb: KnowledgeBase, answer: Answer | None) -> str:
    """One card per citation: title, score, the paragraph with the quoted span highlighted."""
    if answer is None:
        return "<div class='src-meta'>提问后，这里显示引用的原文。</div>"
    if answer.abstained:
        cards = [
            f"<div class='src-card'><div class='src-head'>《{html.escape(h.title)}》</div>"
            f"<div class='src-meta'>相近段落 · 得分 {h.score:.3f}</div>"
            f"<div class='src-body'>{html.escape(repaired(h.text))}</div></div>"
            for h in answer.passages[:3]
        ]
        return "<div class='abstain'>没有找到答案，以下是最接近的段落：</div>" + "".join(cards)
    cards = []
    for c in answer.citations:
        doc = kb.document(c.doc_id)
        chunk = kb.chunk(c.chunk_id)
        start, end = (chunk.start, chunk.end) if chunk else (max(0, c.start - 120), min(len(doc), c.end + 120))
        body = (
            html.escape(repaired(doc[start : c.start]))
            + "<mark>" + _quote_html(doc, c.start, c.end, c.answer_start, c.answer_end) + "</mark>"
            + html.escape(repaired(doc[c.end : end]))
        )
        cards.append(
            f"<div class='src-card' id='src-{c.n}'><div class='src-head'>[{c.n}] 《{html.escape(c.title)}》</div>"
            f"<div class='src-meta'>{html.escape(c.doc_id)} · 字符 {c.start}–{c.end} · 得分 {c.score:.3f}</div>"
            f"<div class='src-body'>{body}</div></div>"
        )
    return "".join(cards)


def _quote_html(doc: str, start: int, end: int, answer_start: int | None, answer_end: int | None) -> str:
    """The quote, with the short answer inside it in bold when the reader located one."""
    if answer_start is None or answer_end is None or not start <= answer_start < answer_end <= end:
        return html.escape(repaired(doc[start:end]))
    return (html.escape(repaired(doc[start:answer_start])) + "<strong>" + html.escape(repaired(doc[answer_start:answer_end]))
            + "</strong>" + html.escape(repaired(doc[answer_end:end])))


def example_questions(kb: KnowledgeBase, n: int = 4) -> list[str]:
    """Questions made from the knowledge base itself: a clause with a figure, the figure asked for."""
    out, titles = [], set()
    for chunk in kb.chunks.values():
        if chunk.title in titles:
            continue
        for a, b in chunk.sentence_spans:
            clause = _question_from(chunk.text[a:b])
            if clause:
                out.append(clause)
                titles.add(chunk.title)
                break
        if len(out) >= n:
            break
    return out


def _question_from(sentence: str) -> str | None:
    """「青岛市99个项目入选，总投资1565.5亿元。」 → 「总投资多少？」: a clause ending in a figure."""
    for clause in re.split(r"[，。；！？]", sentence):
        clause = re.sub(r"^(本报\S{1,6}讯|据悉|其中|同时)\s*", "", clause.strip())
        if not 6 <= len(clause) <= 30 or re.search(r"[“”‘’\"《》]", clause):
            continue
        for m in QUANTITY.finditer(clause):
            span = m.group()
            if m.end() == len(clause) and m.start() >= 4 and re.search(r"\d\D", span) and not _YEAR_SPAN.match(span):
                head = clause[: m.start()].rstrip("达为是约近超")
                unit = re.search(r"(个|家|项|条|名|人|场|次|起|处|艘|户|套|所|种|批|件|台|辆)$", span)
                return head + (f"有多少{unit.group(1)}？" if unit else "是多少？")
    return None


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(repaired(text).split())
    return text if len(text) <= n else text[:n] + "…"
