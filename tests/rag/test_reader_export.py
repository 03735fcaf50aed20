"""A transformers question-answering folder (as a hub reader arrives) goes through the same export."""

import collections
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rag import Config, KnowledgeBase
from rag.config import ReaderPrecision
from rag.offline_model import ensure_model
from rag.onnx_export import INT8_BITS_ENV
from rag.reader_export import (
    WEIGHTS_FILE,
    assemble,
    calibrated_confidence,
    calibrated_threshold,
    ensure_reader,
    export_onnx,
    model_file,
    reader_exported,
    recipe_name,
    shipped_info,
    write_reader_tokenizer,
)


@pytest.fixture()
def qa_folder(tmp_path, monkeypatch):
    """The shipped reader saved as a plain transformers QA folder, as a hub reader arrives; exports land in tmp."""
    monkeypatch.setattr("rag.reader_export.models_root", lambda: tmp_path / "cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = ensure_model()
    folder = tmp_path / "qa-model"
    assemble(base, WEIGHTS_FILE).save_pretrained(folder)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(base / name, folder / name)
    split = shipped_info().get("split_punctuation", False)
    write_reader_tokenizer(base / "tokenizer.json", folder / "tokenizer.json", split)
    return folder


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_a_transformers_qa_folder_serves_as_reader(qa_folder, precision, news_kb: KnowledgeBase):
    exported = ensure_reader(str(qa_folder), precision)
    assert (exported / model_file(precision)).exists() and (exported / "tokenizer.json").exists()
    assert reader_exported(str(qa_folder), precision)
    assert exported.name.endswith(recipe_name(precision))  # one cache folder per precision (and int8 weight width)
    ops = {node.op_type for node in onnx.load(str(exported / model_file(precision))).graph.node}
    assert ("QAttention" if precision == "int8" else "Attention") in ops  # the optimizer fused its layers
    kb = KnowledgeBase.open(news_kb.path, Config(reader=str(qa_folder), reader_precision=precision))
    a = kb.answer("2024年青岛市进出口达多少亿元？")
    assert a.short == "9076.7亿元"
    assert kb.document(a.citations[0].doc_id)[a.citations[0].start : a.citations[0].end] == a.citations[0].quote


def test_each_precision_has_its_own_calibrated_threshold(monkeypatch):
    record = {"threshold": -7.0, "other_precisions": {"fp32": {"threshold": -5.0}}}
    assert calibrated_threshold(record, "int8") == -7.0 and calibrated_threshold(record, "fp32") == -5.0
    assert calibrated_threshold({"threshold": -7.0}, "fp32") == -7.0  # calibrated for one precision only
    assert calibrated_threshold({}, "fp32") == 0.0  # hub readers: answer when a span beats "no answer"
    record["other_precisions"]["int8pc7"] = {"threshold": -6.0}  # 7-bit int8 weights (AVX2-only CPUs)
    monkeypatch.setenv(INT8_BITS_ENV, "7")
    assert calibrated_threshold(record, "int8") == -6.0 and calibrated_threshold(record, "fp32") == -5.0
    monkeypatch.setenv(INT8_BITS_ENV, "8")
    assert calibrated_threshold(record, "int8") == -7.0
    shipped = shipped_info()
    assert calibrated_threshold(shipped, "fp32") == shipped["other_precisions"]["fp32"]["threshold"]
    with pytest.raises(ValueError, match="int8, fp32"):
        Config(reader_precision="fp16")


def test_the_confidence_fit_is_looked_up_with_its_precisions_threshold(monkeypatch):
    own = {"confidence": {"slope": 0.5, "intercept": 1.0}}
    record = {"threshold": -7.0, "calibration": own, "other_precisions": {"fp32": {"threshold": -5.0}}}
    assert calibrated_confidence(record, "int8") == (0.5, 1.0)
    assert calibrated_confidence(record, "fp32") is None  # fp32 has its own calibration, without a fit
    record["other_precisions"]["fp32"]["calibration"] = {"confidence": {"slope": 0.4, "intercept": 2.0}}
    assert calibrated_confidence(record, "fp32") == (0.4, 2.0)
    assert calibrated_confidence({}, "int8") is None  # hub readers claim no confidence
    monkeypatch.setenv(INT8_BITS_ENV, "8")
    shipped = shipped_info()
    assert calibrated_confidence(shipped, "int8") is not None and calibrated_confidence(shipped, "fp32") is not None


def test_an_unknown_hub_reader_is_a_clear_error(tmp_path, monkeypatch):
    from rag.reader_export import ReaderWeightsError

    monkeypatch.setattr("rag.reader_export.models_root", lambda: tmp_path / "cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReaderWeightsError, match="could not load reader"):
        ensure_reader("no-such-org/no-such-reader")


@pytest.mark.parametrize("split", [False, True])
def test_the_reader_tokenizer_splits_punctuation_only_when_its_weights_were_trained_so(tmp_path, split):
    from tokenizers import Tokenizer

    text = "代表作为《青春小鸟》，人口14355人（2002年）。出口5711.5亿元，共1,000人。"
    base = ensure_model() / "tokenizer.json"
    write_reader_tokenizer(base, tmp_path / "tokenizer.json", split)
    tokens = Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode(text, add_special_tokens=False)
    original = Tokenizer.from_file(str(base)).encode(text, add_special_tokens=False)
    if not split:
        assert tokens.ids == original.ids
        return
    pieces = [text[a:b] for t, (a, b) in zip(tokens.tokens, tokens.offsets) if t != "▁"]  # a lone ▁ leads
    assert "》，" in [text[a:b] for a, b in original.offsets]  # e5 merges the marks: 《青春小鸟》 has no end of its own
    for mark in "《》，（）。":
        assert all(len(p) == 1 for p in pieces if mark in p), pieces
    assert "." not in pieces and "," not in pieces  # a decimal point or thousands separator stays in its number
    assert "1,000" in pieces
    assert "".join(pieces) == text  # every character still maps back to the text


@pytest.fixture(scope="module")
def tiny_qa():
    """A randomly initialised 2-layer BERT question-answering model: the export's graph, quickly."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config = transformers.BertConfig(
        vocab_size=1200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    torch.manual_seed(0)
    return transformers.BertForQuestionAnswering(config).eval()


IDS = np.array([[0, 7, 8, 9, 2, 2, 30, 40, 50, 60, 2], [0, 7, 8, 2, 2, 30, 40, 2, 1, 1, 1]], dtype=np.int64)
MASK = (np.arange(11) < np.array([[11], [8]])).astype(np.int64)


def _ops(path):
    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _max_difference_from_torch(model, path):
    import torch

    feed = {"input_ids": IDS, "attention_mask": MASK, "token_type_ids": np.zeros_like(IDS)}
    onnx_out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    valid = MASK.astype(bool)
    return max(np.abs(o - t.numpy())[valid].max() for o, t in zip(onnx_out, (out.start_logits, out.end_logits)))


def test_the_export_fuses_each_layer_and_scores_as_torch_does(tiny_qa, tmp_path):
    export_onnx(tiny_qa, tmp_path, ReaderPrecision.FP32)
    assert _ops(tmp_path / "model.onnx")["Attention"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert _max_difference_from_torch(tiny_qa, tmp_path / "model.onnx") < 1e-4


def test_the_int8_export_keeps_each_feed_forward_output_layer_fp32(tiny_qa, tmp_path):
    export_onnx(tiny_qa, tmp_path, ReaderPrecision.INT8)
    ops = _ops(tmp_path / model_file("int8"))
    assert ops["QAttention"] == 2 and ops["MatMul"] == 2  # one fp32 product per layer, after its GELU
    assert sorted(p.name for p in tmp_path.iterdir()) == [model_file("int8")]


def test_a_fusion_that_changes_the_scores_is_not_kept(tiny_qa, tmp_path, monkeypatch):
    """The optimizer matches patterns; one it gets wrong (here: the span head's bias shifted by
    one) must leave the traced graph in place."""
    from onnx import numpy_helper
    from onnxruntime.transformers import optimizer

    real = optimizer.optimize_model

    def wrong(*args, **kwargs):
        fused = real(*args, **kwargs)
        bias = next(t for t in fused.model.graph.initializer if numpy_helper.to_array(t).shape == (2,))
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 1, bias.name))
        return fused

    monkeypatch.setattr(optimizer, "optimize_model", wrong)
    export_onnx(tiny_qa, tmp_path, ReaderPrecision.FP32)
    assert _ops(tmp_path / "model.onnx")["Attention"] == 0
    assert _max_difference_from_torch(tiny_qa, tmp_path / "model.onnx") < 1e-4
