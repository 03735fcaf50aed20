"""What the chat window shows: the reply (Markdown), the sources panel (HTML), example questions."""

from __future__ import annotations

import base64
import html

from rag import Answer, KnowledgeBase
from rag.chunking import repaired
from rag.reply import NOT_FOUND, clip, confidence_note, missing_reason, year_note
from rag.zh import question_from_sentence

CSS = """
.src-card {border:1px solid #d0d7de; border-radius:8px; padding:8px 10px; margin:0 0 10px 0; background:#fff;}
.src-card:target, .src-card.active {border-color:#d97706; box-shadow:0 0 0 2px #fde68a;}
.src-head {font-weight:600; margin-bottom:4px;}
.src-meta {color:#57606a; font-size:12px; margin-bottom:6px;}
.src-body {line-height:1.7; white-space:pre-wrap;}
.src-body mark {background:#fde68a; padding:0 1px;}
.src-page {margin-top:8px;} .src-page img {width:100%; border:1px solid #d0d7de; border-radius:4px;}
.abstain {border-left:4px solid #9ca3af; padding-left:8px; color:#374151;}
"""


def reply_markdown(answer: Answer) -> str:
    """The chat reply: bold short answer, quotes with [n] links to the sources panel.

    Document text is data: everything taken from a document is HTML-escaped, since the chat
    window renders HTML in replies.
    """
    esc = html.escape
    if answer.abstained:
        lines = [f"> **{NOT_FOUND}**", ">"]
        if answer.missing:
            lines.append(f"> {esc(missing_reason(answer.missing))}")
        if answer.passages:
            lines.append("> 最接近的段落（仅供参考，不是答案）：")
            for hit in answer.passages[:3]:
                lines.append(f"> - 《{esc(hit.title)}》{esc(clip(hit.text))}")
        return "\n".join(lines)
    lines = (
        [f"**答案：{esc(repaired(answer.short))}**{esc(confidence_note(answer))}", ""]
        if answer.short
        else ["根据资料：", ""]
    )
    if answer.year_mismatch:
        lines += [f"*{esc(year_note(answer))}*", ""]
    for c in answer.citations:
        lines.append(f'> {esc(repaired(c.quote))} <a href="#src-{c.n}" title="{esc(c.title)}">[{c.n}]</a>')
        lines.append(">")
    lines.append("")
    lines.append("来源：" + "；".join(f"[{c.n}]《{esc(c.title)}》" for c in answer.citations))
    return "\n".join(lines)


def sources_html(kb: KnowledgeBase, answer: Answer | None) -> str:
    """One card per citation: title, where it is, the paragraph with the quoted span highlighted,
    and for a PDF or an image the page itself with the quote highlighted on it (the first one open)."""
    if answer is None:
        return "<div class='src-meta'>提问后，这里显示引用的原文。</div>"
    if answer.abstained:
        cards = [
            f"<div class='src-card'><div class='src-head'>《{html.escape(h.title)}》</div>"
            "<div class='src-meta'>相近段落（不是答案）</div>"
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
            + "<mark>"
            + _quote_html(doc, c.start, c.end, c.answer_start, c.answer_end)
            + "</mark>"
            + html.escape(repaired(doc[c.end : end]))
        )
        cards.append(
            f"<div class='src-card' id='src-{c.n}'><div class='src-head'>[{c.n}] 《{html.escape(c.title)}》</div>"
            f"<div class='src-meta'>{html.escape(_where(c))}</div>"
            f"<div class='src-body'>{body}</div>{_page_html(kb, c, open_=not cards)}</div>"
        )
    return "".join(cards)


def _page_html(kb: KnowledgeBase, c, open_: bool) -> str:
    """The rendered page with the quote highlighted, as an inline image (nothing for plain text)."""
    image = kb.page_image(c)
    if image is None:
        return ""
    data = base64.b64encode(image).decode("ascii")
    return (
        f"<details class='src-page'{' open' if open_ else ''}><summary>原文第 {c.page} 页（引文已标出）</summary>"
        f"<img alt='原文第 {c.page} 页，引文已标出' src='data:image/jpeg;base64,{data}'></details>"
    )


def _where(c) -> str:
    """doc id, page or heading path, character offsets: enough to find the quote in the original."""
    parts = [c.doc_id]
    if c.page:
        parts.append(f"第 {c.page} 页")
    if c.section:
        parts.append(c.section)
    parts.append(f"第 {c.start}–{c.end} 字")
    return " · ".join(parts)


def _quote_html(doc: str, start: int, end: int, answer_start: int | None, answer_end: int | None) -> str:
    """The quote, with the short answer inside it in bold when the reader located one."""
    if answer_start is None or answer_end is None or not start <= answer_start < answer_end <= end:
        return html.escape(repaired(doc[start:end]))
    return (
        html.escape(repaired(doc[start:answer_start]))
        + "<strong>"
        + html.escape(repaired(doc[answer_start:answer_end]))
        + "</strong>"
        + html.escape(repaired(doc[answer_end:end]))
    )


def kb_summary(name: str, kb: KnowledgeBase, titles: int = 3) -> str:
    """One line about the knowledge base in use (Markdown, document text escaped)."""
    seen: list[str] = []
    for chunk in kb.chunks.values():
        title = chunk.title or kb.documents[chunk.doc_id].title
        if title and title not in seen:
            seen.append(title)
    line = f"知识库 **{html.escape(name)}**：{len(kb.documents)} 篇文档，{len(kb.chunks)} 个段落"
    if seen:
        line += "，如" + "".join(f"《{html.escape(clip(t, 24))}》" for t in seen[:titles])
        line += " 等" if len(seen) > titles else ""
    return line + "。"


def placeholder(examples: list[str]) -> str:
    return f"例如：{examples[0]}" if examples else "输入问题，例如文档里的一个数字、日期或名称是什么"


def example_questions(kb: KnowledgeBase, n: int = 4) -> list[str]:
    """Questions made from the knowledge base itself: a clause with a figure, the figure asked for.

    One per article, and only questions that stand on their own: the clause names a place, body,
    person or year (「2024年青岛市进出口是多少？」), never 「此次…」 or a bare 「项目总投资…」.
    """
    out: list[str] = []
    for one_per_article in (True, False):  # spread over articles first, then fill up
        titles = set()
        for chunk in kb.chunks.values():
            for a, b in chunk.sentence_spans:
                if len(out) >= n or (one_per_article and chunk.title in titles):
                    break
                question = question_from_sentence(chunk.text[a:b])
                if question and question not in out:
                    out.append(question)
                    titles.add(chunk.title)
    return out
