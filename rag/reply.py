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


def render_text(answer: Answer) -> str:
    """答案：… then one line per quote; or the abstention with the closest passages."""
    if answer.abstained:
        lines = [NOT_FOUND.rstrip("。") + "：" + missing_reason(answer.missing) if answer.missing else NOT_FOUND]
        if answer.passages:
            lines.append("最接近的段落：")
            lines += [f"- 《{h.title}》{clip(h.text)}" for h in answer.passages[:3]]
        return "\n".join(lines)
    lines = [f"答案：{answer.short}" if answer.short else "根据资料："]
    lines += [f"[{c.n}] “{repaired(c.quote)}” ——《{c.title}》" for c in answer.citations]
    return "\n".join(lines)
