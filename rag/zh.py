"""Chinese language rules, in one place: question words and types, figures, dates, bylines.

The answer steps, follow-up handling, chunking and the chat window's example questions all
read Chinese text; the patterns they share live here so a rule is changed once. A rule that
fits only one page does not belong here: add one with the dev-split or CMRC/DRCD figures that
show it helps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# ---- characters ------------------------------------------------------------------------------
# Han characters: the CJK Unified Ideographs block
HAN_FIRST, HAN_LAST = "\u4e00", "\u9fff"
HAN = f"{HAN_FIRST}-{HAN_LAST}"  # as a regex character-class body: f"[{HAN}]"
# every CJK ideograph block, for splitting text into characters (Extension A, compatibility forms)
CJK = f"\u3400-{HAN_LAST}\uf900-\ufaff"


def is_han(ch: str) -> bool:
    return HAN_FIRST <= ch <= HAN_LAST


# ---- figures ---------------------------------------------------------------------------------
NUMBER = r"\d+(?:[.,]\d+)*(?:多|余)?"
# measure words that follow a figure; counts first (a count noun is asked as 多少家/几个)
COUNT_WORDS = "家次|人次|个|家|人|名|项|条|场|次|起|处|艘|户|套|所|种|批|件|台|辆|款|只|位|座|部|章|层|级"
MEASURE_WORDS = (
    f"亿元|万元|元|美元|平方公里|平方米|公里|千米|米|亩|公斤|千克|吨|{COUNT_WORDS}|年|岁|天|倍|%|％|[A-Za-z]{{1,3}}\\b"
)
UNIT = rf"(?:万亿|亿|万|千|百)?(?:{MEASURE_WORDS})?"
QUANTITY = re.compile(
    rf"(?:约|近|超过|超|逾)?{NUMBER}{UNIT}(?:左右|以上|以下|多)?|[一二三四五六七八九十百千万两]+(?:个|家|项|条|名|次|年|大|种|批)"
)
ASKED_UNIT = re.compile(rf"(?:多少|几)({MEASURE_WORDS}|钱)")  # 多少家 asks for a count of 家
ENDS_IN_COUNT = re.compile(f"({COUNT_WORDS})$")
YEAR_ONLY = re.compile(r"^\d{4}年$")  # a span that is just a year, rarely the answer to 多少
YEAR = re.compile(r"(?:19|20)\d{2}年?")
# a calendar year as written in text: 2024年 (not 2024家), and ranges: 2023—2027年, 2023-27年
CALENDAR_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})年")
YEAR_RANGE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*[-—–~至到]\s*((?:19|20)?\d{2})年")


def calendar_years(text: str) -> tuple[list[str], set[str]]:
    """(the years `text` writes, sorted; every year it covers, a range's years between included)."""
    written = set(CALENDAR_YEAR.findall(text))
    between: set[str] = set()  # empty for a range written backwards: its ends are still written
    for first, last in YEAR_RANGE.findall(text):
        last = first[: 4 - len(last)] + last
        written |= {first, last}
        between |= {str(y) for y in range(int(first), int(last) + 1)}
    return sorted(written), written | between


def year_mismatch(question: str, quoted: str) -> tuple[list[str], list[str]] | None:
    """(years the question names, years the quote names) when the quote names years and covers none
    of the question's: the answer may be another year's figure. None when they agree or either is silent."""
    asked, asked_covered = calendar_years(question)
    named, covered = calendar_years(quoted)
    return (asked, named) if asked and named and not asked_covered & covered else None


NUMERAL = re.compile(r"[\d零〇一二两三四五六七八九十百千万亿]")  # a figure in digits or in words

# ---- dates -----------------------------------------------------------------------------------
DATE = re.compile(
    r"\d{4}年(?:\d{1,2}月(?:\d{1,2}日)?)?(?:至\d{1,2}月?\d{1,2}日)?|\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?|"
    r"(?:\d{1,2}月)?(?:上旬|中旬|下旬|底|初)|今年|去年|明年|近日|日前"
)
ASKS_FOR_DAY = re.compile(r"哪一?天|几月几[日号]|什么时候|何时|日期")

# ---- questions -------------------------------------------------------------------------------
QUESTION_TYPES = (
    ("date", re.compile(r"何时|什么时候|哪一?天|哪一?年|几月|哪个月|日期|时间是")),
    # 几 asks a count (第几: a rank, also answered with a figure), but not in 几乎 (almost), 几何
    # (geometry), 几内亚 or 哪几 (a list); a 百分之 in the question states a share, it does not ask
    # for one (5 of the 9 such questions in DRCD, CMRC trial and CMRC dev's even half asked 什么/哪个)
    ("quantity", re.compile(r"多少|(?<!哪)几(?!乎|何|内亚)|多大|多长|多高|多远|多重|比重|占比|增长了?多")),
    ("person", re.compile(r"谁|哪位|什么人|姓名")),
    ("place", re.compile(r"哪里|哪儿|在哪|什么地方|何地|哪个(?:城市|区|省|国家|地方)")),
    ("list", re.compile(r"哪些|哪几|包括什么|有什么|分别")),
    ("which", re.compile(r"哪个|哪家|哪一|什么|何种|是啥")),
)
QUESTION_WORDS = re.compile(
    r"多少|几[个家项条名次年月天]?|什么时候|什么|哪些|哪个|哪里|哪儿|哪一?[天年个家位]?|谁|何时|何地|如何|怎么样?|为什么|是否|吗|呢|？|\?"
)
# a question opening with one of these leans on the previous one (它/其/这/那/还有/另外…)
FOLLOW_UP_OPENERS = re.compile(
    r"^(那么?|它们?|其中|其|这个?|那个?|该|他们?|她们?|还有|另外|此外|以及|并且|而且|同时|和|与|then|and)"
)
CLAUSE_BREAK = re.compile(r"[，,；;。！？!?：:]")
# place words too generic to be a name the documents must contain
GENERIC_PLACES = frozenset(
    "城市 国家 地区 地方 大洋 大陆 省份 首都 省会 县城 乡村 海外 国内 国外 全国 全省 全市 本市".split()
)

# words too common to search by (function words and question words)
STOP_WORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 而 就 把 被 对 于 为 中 之 其 这 那 有 个 吗 呢 啊 吧 么 "
    "什么 哪 哪些 哪个 多少 几 怎么 怎样 如何 为什么 是否 谁 何时 何地".split()
)

# ---- news page furniture ---------------------------------------------------------------------
BYLINE = re.compile(r"^\s*□?\s*(本报)?(记者|通讯员|特约记者|见习记者)\s*\S.*$|^\s*□\s*\S.{0,40}报道\s*$")
DATELINE = re.compile(r"^本报\S{1,8}讯")  # 本报青岛讯: the paragraph's source, not its content


def question_type(question: str) -> str | None:
    """date | quantity | person | place | list | which, or None (the first pattern that matches)."""
    for name, pattern in QUESTION_TYPES:
        if pattern.search(question):
            return name
    return None


def strip_question_words(question: str, replacement: str = " ") -> str:
    return QUESTION_WORDS.sub(replacement, question)


# ---- example questions (the chat window's) ---------------------------------------------------
_LEANS_ON_CONTEXT = re.compile(r"^(此|该|其|这|那|如|分别|保持|同比|比|较|占|另外|此外)|此次|比\d|第$")
# a named place or body: two or more characters and the kind of thing it is (jieba's name tags are
# too noisy); shortest first, so 「青岛市市长」 names 青岛市 and leaves 市长, and never opening with a
# date's 年/月/日 or a preposition, so 「2024年在青岛市」 names 青岛市
NAMED_PLACE_OR_BODY = re.compile(
    rf"(?![年月日在于从到的和与及])[{HAN}]{{2,}}?(?:市|省|区|县|镇|局|委|厅|港|集团|公司|大学|银行|医院)"
)
# what makes a question stand alone: a year, or a named place or body
_ANCHOR = re.compile(rf"\d{{4}}年|{NAMED_PLACE_OR_BODY.pattern}")
_LEAD_IN = re.compile(r"^(据悉|据了解|其中|同时|目前|截至目前)\s*")
_VERB_BEFORE_FIGURE = re.compile(r"(达到|达|为|是|约|近|超过|超|共|可|增长)$")


def question_from_sentence(sentence: str) -> str | None:
    """「2024年青岛市进出口达9076.7亿元。」 → 「2024年青岛市进出口是多少？」, or None (the question a
    clause ending in a figure answers, when the clause says which place, body or year it is about)."""
    for clause in re.split(r"[，。；！？]", sentence):
        clause = _LEAD_IN.sub("", DATELINE.sub("", clause.strip()))
        if not 6 <= len(clause) <= 30 or re.search(r"[“”‘’\"《》、]", clause) or _LEANS_ON_CONTEXT.match(clause):
            continue
        for m in QUANTITY.finditer(clause):
            span = m.group()
            if m.end() != len(clause) or m.start() < 4 or not re.search(r"\d\D", span) or YEAR_ONLY.match(span):
                continue
            head = _VERB_BEFORE_FIGURE.sub("", clause[: m.start()])
            if (
                len(head) < 4
                or _LEANS_ON_CONTEXT.search(head)
                or not _ANCHOR.search(re.sub("全[国省市区县]", "", head))
            ):
                continue  # nothing in it says which place, body or year it is about
            unit = ENDS_IN_COUNT.search(span)
            return head + (f"有多少{unit.group(1)}？" if unit else "是多少？")
    return None


# ---- scripts ---------------------------------------------------------------------------------
# Traditional ↔ Simplified by OpenCC's phrase-aware tables: a character table alone gets
# one-to-many cases wrong (发 → 發 or 髮), and OpenCC is the reference converter (DRCD's
# Simplified copy was made with it).
@functools.cache
def _converter(config: str):
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    return _converter("t2s").convert(text)


def to_traditional(text: str) -> str:
    return _converter("s2t").convert(text)


def traditional_share(texts: Iterable[str]) -> float:
    """Share of the Han characters of `texts` that Simplified conversion changes: near 0 for
    Simplified text, a fifth or more for Traditional."""
    changed = han = 0
    for text in texts:
        simplified = to_simplified(text)
        if len(simplified) != len(text):  # a phrase rewritten to another length: no character pairs
            continue
        for ch, simple in zip(text, simplified):
            if is_han(ch):
                han += 1
                changed += ch != simple
    return changed / han if han else 0.0
