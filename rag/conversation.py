"""Follow-up questions: fold an elliptical question into the topic of the previous one.

「总投资多少？」 after 「青岛有几个项目入选省绿色低碳高质量发展重点项目？」 is searched as
「青岛有几个项目入选省绿色低碳高质量发展重点项目 总投资多少？」. Without a generative model we
rewrite by rule: a question is a follow-up when it is short once its question words are
removed, or opens with a pronoun or connective (它/其/这/那/还有/另外…).
"""

from __future__ import annotations

import re

from .zh import FOLLOW_UP_OPENERS, strip_question_words

_TRAILING = re.compile(r"[？?。！!\s]+$")


def is_follow_up(question: str) -> bool:
    core = strip_question_words(question, "")
    core = re.sub(r"[\s，,。？?！!、]", "", core)
    return bool(FOLLOW_UP_OPENERS.match(question.strip())) or len(core) <= 6


def contextualize(question: str, previous: list[str]) -> str:
    """The question to search: itself, or joined to the last self-contained question."""
    question = question.strip()
    if not previous or not is_follow_up(question):
        return question
    topic = next((q for q in reversed(previous) if not is_follow_up(q)), previous[-1])
    topic = _TRAILING.sub("", strip_question_words(topic)).strip()
    body = FOLLOW_UP_OPENERS.sub("", question).lstrip("，, ")
    return f"{topic} {body}"
