"""The Chinese reply, rendered in one place from an `Answer`'s fields (the CLI prints it; the
chat window renders the same fields as Markdown in `ui/render.py`)."""

from __future__ import annotations

from .chunking import repaired
from .schema import Answer

NOT_FOUND = "文档中没有找到这个问题的答案。"


def clip(text: str, n: int = 60) -> str:
    """One line of at most `n` characters, for a passage shown as a pointer rather than a quote."""
    text = " ".join(repaired(text).split())
    return text if len(text) <= n else text[:n] + "…"


def missing_reason(missing: list[str]) -> str:
    return f"资料没有提到“{'、'.join(missing)}”。" if missing else ""


# Below this calibrated confidence the answer is more likely wrong than right (its expected F1 is
# under one half), so the reply says to check the quote rather than present the answer as found.
LOW_CONFIDENCE = 0.5
UNSURE = "把握不大，请对照原文核实"


def confidence_note(answer: Answer) -> str:
    """（置信度 93%）, with the warning when it is low; "" when nothing calibrated the answer."""
    if answer.confidence is None:
        return ""
    warn = "；" + UNSURE if answer.confidence < LOW_CONFIDENCE else ""
    return f"（置信度 {answer.confidence:.0%}{warn}）"


def year_note(answer: Answer) -> str:
    """注意：问题说的是2023年，引文说的是2024年。 when the quotes name none of the question's years."""
    if not answer.year_mismatch:
        return ""
    asked, quoted = answer.year_mismatch
    return f"注意：问题说的是{'、'.join(y + '年' for y in asked)}，引文说的是{'、'.join(y + '年' for y in quoted)}。"


def render_text(answer: Answer) -> str:
    """答案：… then one line per quote; or the abstention with the closest passages."""
    if answer.abstained:
        lines = [NOT_FOUND.rstrip("。") + "：" + missing_reason(answer.missing) if answer.missing else NOT_FOUND]
        if answer.passages:
            lines.append("最接近的段落：")
            lines += [f"- 《{h.title}》{clip(h.text)}" for h in answer.passages[:3]]
        return "\n".join(lines)
    lines = [f"答案：{answer.short}{confidence_note(answer)}" if answer.short else "根据资料："]
    lines += [year_note(answer)] if answer.year_mismatch else []
    lines += [f"[{c.n}] “{repaired(c.quote)}” ——《{c.title}》" for c in answer.citations]
    return "\n".join(lines)
