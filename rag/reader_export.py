"""Assemble and export readers: trained weights → transformers folder → ONNX int8, once, in the cache.

The shipped reader stores only what training changed (the upper encoder layers and the
span head, fp16) next to a JSON with its provenance and SHA-256; the frozen rest comes
from the offline e5-small that `offline_model` converts. A hub reader (any transformers
question-answering model, e.g. a Chinese RoBERTa fine-tuned on CMRC) goes through the
same export. Only this module imports torch, and only on first use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple

from . import onnx_export
from .config import ReaderPrecision
from .onnx_export import step
from .paths import cache_root, file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "reader"
WEIGHTS_FILE = WEIGHTS_DIR / "reader.safetensors"
INFO_FILE = WEIGHTS_DIR / "reader.json"
DEFAULT_READER = "default"
# trained corrections to some rows of the word-embedding matrix (train_reader.py --tune-embeddings):
# the row ids and what is added to each; stored apart because the 96M-parameter matrix is not shipped
EMBEDDING_ROWS = "embedding_delta.rows"
EMBEDDING_VALUES = "embedding_delta.values"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"

# Punctuation as a token of its own, as BERT's basic tokenizer makes it (a decimal point or thousands
# separator inside a number stays). e5's sentencepiece merges closing marks with what follows
# (」。 》, )。), so a span could not end before them: on CMRC dev's even half 5.7% of questions had
# no gold answer cut exactly from e5's tokens, 2.4% with this split (tokens per character unchanged).
PUNCTUATION_SPLIT = r"[\p{P}&&[^.,]]|(?<!\d)[.,]|[.,](?!\d)"


class ExportRecipe(NamedTuple):
    name: str  # part of the cache folder's name: a new recipe is exported anew instead of serving an old file
    model_file: str  # the ONNX file the export writes


# Per-channel int8 (one scale per output channel) scored close to fp32 on tuning data where
# per-matrix int8 lost 3-4 points of F1, at int8's speed (DRCD validation F1 0.738 per matrix,
# 0.776 per channel, 0.784 fp32).
EXPORT_RECIPES = {
    ReaderPrecision.INT8: ExportRecipe("int8pc", "model_qint8.onnx"),
    ReaderPrecision.FP32: ExportRecipe("fp32", "model.onnx"),
}


# In every export folder's name: exports made before the layers were fused (`onnx_export.fuse_transformer`)
# are made again rather than served, and `rag cache` lists the old ones as stale.
EXPORT_GRAPH = "fused"


def model_file(precision: ReaderPrecision | str = ReaderPrecision.INT8) -> str:
    """The ONNX file an export of `precision` holds."""
    return EXPORT_RECIPES[ReaderPrecision.parse(precision)].model_file


def recipe_name(precision: ReaderPrecision | str = ReaderPrecision.INT8) -> str:
    """The export recipe as this CPU makes it: int8 per channel is "int8pc", or "int8pc7" with
    7-bit weights (`onnx_export.seven_bit`); part of the cache folder's name."""
    precision = ReaderPrecision.parse(precision)
    return EXPORT_RECIPES[precision].name + (onnx_export.int8_tag() if precision == ReaderPrecision.INT8 else "")


def calibrated_threshold(record: dict, precision: ReaderPrecision | str = ReaderPrecision.INT8) -> float:
    """The no-answer threshold calibrated for `precision` as this CPU exports it (train_reader.py
    calibrate --precision): the record's `threshold` is 8-bit int8's; fp32's and 7-bit int8's are
    under `other_precisions`, by recipe name ("fp32", "int8pc7"); a reader calibrated for one
    recipe only (or none: hub readers, 0) uses that one."""
    return float(_calibrated(record, precision).get("threshold", record.get("threshold", 0.0)))


def calibrated_confidence(
    record: dict, precision: ReaderPrecision | str = ReaderPrecision.INT8
) -> tuple[float, float] | None:
    """(slope, intercept) of the logistic map from a span's score to the answer's confidence,
    fitted with the threshold (train_reader.py calibrate) for `precision`'s recipe as `calibrated_threshold`
    looks it up; None for a reader never calibrated (hub readers): no confidence is claimed. A
    recipe with its own entry never borrows another's fit: its scores are on another scale."""
    fit = _calibration(record, precision).get("confidence")
    return (float(fit["slope"]), float(fit["intercept"])) if fit else None


def calibrated_answer_check(record: dict, precision: ReaderPrecision | str = ReaderPrecision.INT8) -> dict | None:
    """The answer check (`rag.answer_check.AnswerCheck.to_dict`) fitted with the threshold for
    `precision`'s recipe, looked up as `calibrated_confidence`; None when there is none."""
    return _calibration(record, precision).get("answer_check")


def _calibration(record: dict, precision: ReaderPrecision | str) -> dict:
    """The calibration entry of `precision`'s recipe: its own when it has one, else the record's."""
    own = _calibrated(record, precision)
    return own.get("calibration", {}) if own else record.get("calibration", {})


def _calibrated(record: dict, precision: ReaderPrecision | str) -> dict:
    """`other_precisions`' entry for this CPU's recipe of `precision` ({} when the record's own applies)."""
    return record.get("other_precisions", {}).get(recipe_name(precision), {})


class ReaderWeightsError(RuntimeError):
    """The shipped reader weights are missing or do not match their recorded hash."""


def shipped_info(weights: Path = WEIGHTS_FILE, info: Path = INFO_FILE) -> dict:
    """The provenance JSON, after checking the weights against its hash."""
    if not weights.exists() or not info.exists():
        raise ReaderWeightsError(
            f"reader weights not found at {weights.parent}; reinstall the package, retrain them with "
            f"`python benchmarks/train_reader.py`, or use composer='heuristic'."
        )
    w, i = weights.stat(), info.stat()
    return dict(_checked_record(weights, info, (w.st_size, w.st_mtime_ns, i.st_size, i.st_mtime_ns)))


@functools.lru_cache(maxsize=8)
def _checked_record(weights: Path, info: Path, state: tuple) -> dict:
    """Hash the weights once per file state: start-up asks for the record several times."""
    record = json.loads(info.read_text("utf-8"))
    actual = file_sha256(weights)
    if actual != record.get("sha256"):
        raise ReaderWeightsError(
            f"{weights} does not match the hash in {info.name} ({actual[:12]} != {str(record.get('sha256'))[:12]}); "
            f"the file is damaged or was replaced. Restore it from the repository or retrain it."
        )
    return record


def models_root() -> Path:
    return cache_root() / "models"


def reader_exported(name: str = DEFAULT_READER, precision: ReaderPrecision | str = ReaderPrecision.INT8) -> bool:
    """Whether `name` is already exported to the cache at `precision` (loading it then needs no torch)."""
    try:
        return (_target(name, precision) / model_file(precision)).exists()
    except ReaderWeightsError:
        return False


def _target(name: str, precision: ReaderPrecision | str) -> Path:
    recipe = recipe_name(precision)
    if name == DEFAULT_READER:
        return models_root() / f"reader-{shipped_info()['sha256'][:16]}-{EXPORT_GRAPH}-{recipe}"
    local = Path(name)
    slug = hashlib.sha256(str(local.resolve() if local.is_dir() else name).encode()).hexdigest()[:12]
    return models_root() / f"reader-hub-{slug}-{EXPORT_GRAPH}-{recipe}"


def ensure_reader(name: str = DEFAULT_READER, precision: ReaderPrecision | str = ReaderPrecision.INT8) -> Path:
    """A folder holding `model_file(precision)`, `tokenizer.json` and `reader.json` for `name`."""
    precision = ReaderPrecision.parse(precision)
    target = _target(name, precision)
    if name == DEFAULT_READER:
        record = shipped_info()
        if not (target / model_file(precision)).exists():
            with step("preparing the answer reader (first run only)"):
                _atomic(target, lambda tmp: _assemble_default(tmp, record, precision))
        info = json.dumps(record, ensure_ascii=False, indent=2)
        if (target / "reader.json").read_text("utf-8") != info:  # recalibrated: same weights, new threshold
            (target / "reader.json").write_text(info, "utf-8")
        _share_base_tokenizer(target, record)
        return target
    if not (target / model_file(precision)).exists():
        with step(f"exporting reader {name} to ONNX {precision.value} (first use only)"):
            _atomic(target, lambda tmp: _export_hub(tmp, name, precision))
    return target


_DEFAULT_EXPORT = re.compile(r"reader-[0-9a-f]{16}(-[a-z0-9]+)*")  # with fullmatch: `_target`'s names for the default


def stale_exports() -> list[Path]:
    """Exports of earlier shipped reader weights (or recipes) left in the model cache, ~120-470 MB
    each: nothing here loads them again. Hub readers and training work folders are not listed."""
    current = {_target(DEFAULT_READER, p).name for p in ReaderPrecision}
    return sorted(
        p
        for p in models_root().glob("reader-*")
        if p.is_dir() and _DEFAULT_EXPORT.fullmatch(p.name) and p.name not in current
    )


def _atomic(target: Path, build) -> None:
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def assemble(base: Path, delta: Path | None = None):
    """A `BertForQuestionAnswering` holding the base e5-small weights overlaid by `delta` (trained layers
    + head, and any trained embedding rows, added to the base rows)."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig.from_json_file(str(base / "config.json"))
    config.num_labels = 2
    config.architectures = ["BertForQuestionAnswering"]
    model = BertForQuestionAnswering(config)
    state = {
        f"bert.{k}": v for k, v in load_file(str(base / "model.safetensors")).items() if not k.startswith("pooler")
    }
    if delta is not None:
        trained = load_file(str(delta))
        rows, values = trained.pop(EMBEDDING_ROWS, None), trained.pop(EMBEDDING_VALUES, None)
        state.update({k: v.float() for k, v in trained.items()})
        if rows is not None and values is not None:
            state[WORD_EMBEDDINGS] = state[WORD_EMBEDDINGS].clone()
            state[WORD_EMBEDDINGS][rows.long()] += values.float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("qa_outputs") for k in missing):
        raise ReaderWeightsError(
            f"reader weights do not fit the base model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model.eval().to(torch.float32)


def _assemble_default(folder: Path, record: dict, precision: ReaderPrecision) -> None:
    from .offline_model import ensure_model

    base = ensure_model()
    model = assemble(base, WEIGHTS_FILE)
    write_reader_tokenizer(base / "tokenizer.json", folder / "tokenizer.json", record.get("split_punctuation", False))
    export_onnx(model, folder, precision)
    (folder / "reader.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")


def _share_base_tokenizer(folder: Path, record: dict) -> None:
    """Exports made before the tokenizer was a byte copy hold the same tokenizer re-serialised;
    copy the base's over it once, so the two load as one (`tokenizer_cache`)."""
    from .offline_model import ensure_model

    base = ensure_model() / "tokenizer.json"
    mine = folder / "tokenizer.json"
    if not record.get("split_punctuation") and mine.stat().st_size != base.stat().st_size:
        tmp = mine.with_name(f"tokenizer.json.tmp{os.getpid()}")
        write_reader_tokenizer(base, tmp, False)
        tmp.replace(mine)  # atomic: a process reading the old file still reads a whole one


def write_reader_tokenizer(base: Path, target: Path, split_punctuation: bool) -> None:
    """The default reader's tokenizer: e5-small's, with punctuation split off when its weights were
    trained that way (`split_punctuation` in reader.json). Training and serving both read this file.
    Unchanged, it is a byte copy, so the encoder and the reader share one loaded tokenizer
    (`tokenizer_cache`)."""
    from tokenizers import Regex, Tokenizer, pre_tokenizers

    if not split_punctuation:
        shutil.copyfile(base, target)
        return
    tokenizer = Tokenizer.from_file(str(base))
    replacement = tokenizer.pre_tokenizer.replacement  # e5's pre-tokenizer is a Metaspace
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PUNCTUATION_SPLIT), "isolated"),
            # "first": only the text's start gets ▁, so the pieces between marks tokenise as before
            pre_tokenizers.Metaspace(replacement=replacement, prepend_scheme="first", split=True),
        ]
    )
    tokenizer.save(str(target))


def _export_hub(folder: Path, name: str, precision: ReaderPrecision) -> None:
    """Any transformers question-answering model: from a local folder, or the hub when online."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForQuestionAnswering.from_pretrained(name).eval()
    except Exception as exc:  # transformers raises OSError, ValueError or hub errors here
        raise ReaderWeightsError(
            f"could not load reader {name!r}: {exc}. Give a local transformers question-answering folder, a hub "
            f"model already in the cache (HF_HUB_OFFLINE=1 uses it offline), or reader='default'."
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ReaderWeightsError(f"reader {name!r} has no fast tokenizer (tokenizer.json); it cannot be served.")
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    export_onnx(model, folder, precision)
    # hub models were not calibrated here: answer whenever a span beats "no answer"
    (folder / "reader.json").write_text(json.dumps({"model": name, "threshold": 0.0}), "utf-8")


def export_onnx(model, folder: Path, precision: ReaderPrecision = ReaderPrecision.INT8) -> None:
    """`model_file(precision)` in `folder`: the fp32 export with its layers fused
    (`onnx_export.fuse_transformer`), kept as it is or dynamically quantised to int8 per channel
    but for the feed-forward blocks' second layers (`onnx_export.after_gelu`)."""
    import torch

    # torch's SDPA attention traces to a graph ONNX Runtime's optimizer cannot fuse; eager's it can
    model.set_attn_implementation("eager")

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.start_logits, out.end_logits

    ids = torch.tensor([[0, 100, 200, 2, 2, 300, 400, 500, 2]])
    plain, fp32 = folder / "plain.onnx", folder / "model.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    # eval(): the exporter leaves the wrapper (and so `model`) in the mode it found it in
    onnx_export.export(Logits(model).eval(), sample, names, ["start_logits", "end_logits"], plain)
    onnx_export.fuse_transformer(plain, fp32, model.config.num_attention_heads, model.config.hidden_size)
    if precision == ReaderPrecision.INT8:
        # the feed-forward blocks' second layers stay fp32: tuning-set F1 0.813 → 0.819 over the
        # three sets (fp32 throughout: 0.822), for ~10% of the forward pass's time
        keep = onnx_export.after_gelu(fp32)
        onnx_export.quantize(fp32, folder / model_file(precision), per_channel=True, keep_fp32=keep)
        fp32.unlink()
