"""Follow-up questions: fold an elliptical question into the topic of the previous one.

「总投资多少？」 after 「青岛有几个项目入选省绿色低碳高质量发展重点项目？」 is searched as
「青岛有几个项目入选省绿色低碳高质量发展重点项目 总投资多少？」. Without a generative model we
rewrite by rule: a question is a follow-up when it is short once its question words are
removed and names no place or body of its own, or opens with a pronoun or connective
(它/其/这/那/还有/另外…).
"""

from __future__ import annotations

import re

from .zh import CALENDAR_YEAR, FOLLOW_UP_OPENERS, NAMED_PLACE_OR_BODY, YEAR, strip_question_words

_TRAILING = re.compile(r"[？?。！!\s]+$")
# 「2023年呢？」, 「那黄岛区的呢？」: the question before, asked of something else
_ASKS_ABOUT = re.compile(r"(?:那么?)?\s*(?P<item>[^\s，,？?]+?)\s*(?:的情况|的)?呢[？?]?")


def is_follow_up(question: str) -> bool:
    """An opening pronoun or connective, or a short question that does not name its own topic.

    「青岛市市长是谁？」 is short but names a place and asks about something of it, so it stands
    alone; 「青岛市呢？」 and 「总投资多少？」 lean on the question before."""
    if FOLLOW_UP_OPENERS.match(question.strip()):
        return True
    core = re.sub(r"[\s，,。？?！!、]", "", strip_question_words(question, ""))
    if len(core) > 6:
        return False
    named = NAMED_PLACE_OR_BODY.search(core)
    return named is None or len(core) - len(named.group()) < 2


def contextualize(question: str, previous: list[str]) -> str:
    """The question to search: itself, or joined to the last self-contained question."""
    question = question.strip()
    if not previous or not is_follow_up(question):
        return question
    topic = _TRAILING.sub("", strip_question_words(_topic(previous))).strip()
    body = FOLLOW_UP_OPENERS.sub("", question).lstrip("，, ")
    return f"{topic} {body}"


def restate(question: str, previous: list[str]) -> str | None:
    """The whole question a 「X呢？」 follow-up asks, when X is a year or a named place or body and the
    last self-contained question names one of the same kind: 「2023年呢？」 after
    「2024年青岛市进出口总值是多少？」 asks 「2023年青岛市进出口总值是多少？」. None otherwise.

    Joined to the topic (`contextualize`), 「2023年呢？」 would still be searched for, but the reader
    would read 「2023年呢？」 itself, which asks nothing; the restated question can be read."""
    asked = _ASKS_ABOUT.fullmatch(question.strip())
    if not previous or asked is None:
        return None
    item, topic = asked.group("item"), _topic(previous)
    if YEAR.fullmatch(item):
        year = CALENDAR_YEAR.search(topic)  # 2024年, never the 2000 of 2000亿元
        return None if year is None else topic[: year.start(1)] + item[:4] + topic[year.end(1) :]
    if NAMED_PLACE_OR_BODY.fullmatch(item):
        named = NAMED_PLACE_OR_BODY.search(topic)
        return None if named is None else topic[: named.start()] + item + topic[named.end() :]
    return None


def _topic(previous: list[str]) -> str:
    """The last self-contained question (or, when every one leans on another, the last)."""
    return next((q for q in reversed(previous) if not is_follow_up(q)), previous[-1]).strip()
