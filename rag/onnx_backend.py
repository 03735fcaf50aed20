"""ONNX Runtime encoder: the same model without importing torch at query time.

Importing sentence-transformers (torch, transformers, scikit-learn) costs ~6 s, most of
the time a new process needs before its first answer. This backend runs an ONNX export
of the model's transformer with onnxruntime and `tokenizers`, and does the pooling
(mean or CLS, as the model's Pooling module says) and normalisation itself.

sentence-transformers' own `backend="onnx"` needs `optimum`, whose releases pin
transformers 4.x and an old huggingface-hub that Gradio 6 cannot use, so the export
(torch.onnx) and int8 dynamic quantisation (onnxruntime.quantization) are done here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import onnx_export, ort_session
from .config import EncoderBackend
from .embedding import unit_vector
from .onnx_export import step
from .tokenizer_cache import shared_tokenizer, truncated

ONNX_FILES = {
    EncoderBackend.ONNX: "model.onnx",
    EncoderBackend.ONNX_INT8: "model_qint8.onnx",
    EncoderBackend.ONNX_INT8_PER_CHANNEL: "model_qint8pc.onnx",
}


def export(model_dir: Path, backend: EncoderBackend) -> Path:
    """Export (once) the transformer of the sentence-transformers folder to ONNX; quantise for int8."""
    per_channel = backend is EncoderBackend.ONNX_INT8_PER_CHANNEL
    # model_qint8pc.onnx, or model_qint8pc7.onnx with 7-bit weights (`onnx_export.seven_bit`)
    name = ONNX_FILES[backend].replace(".onnx", f"{onnx_export.int8_tag(per_channel)}.onnx")
    target = model_dir / "onnx" / name
    if target.exists():
        return target
    target.parent.mkdir(exist_ok=True)
    fp32 = model_dir / "onnx" / ONNX_FILES[EncoderBackend.ONNX]
    with step("exporting the embedding model to ONNX (first run only)"):
        if not fp32.exists():
            import torch

            from .embedding import load_model

            model = load_model(str(model_dir))

            class LastHidden(torch.nn.Module):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, input_ids, attention_mask):
                    return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

            sample = model.tokenizer(
                ["query: 示例", "passage: 示例文本，用于导出。"], padding=True, return_tensors="pt"
            )
            onnx_export.export(
                LastHidden(model[0].auto_model.eval()),
                (sample["input_ids"], sample["attention_mask"]),
                ["input_ids", "attention_mask"],
                ["last_hidden_state"],
                fp32,
            )
        if backend is not EncoderBackend.ONNX and not target.exists():
            onnx_export.quantize(fp32, target, per_channel=per_channel)
    return target


class OnnxModel:
    """Tokenise, run the ONNX transformer, pool and normalise — like the SentenceTransformer it came from."""

    def __init__(self, model_dir: Path, backend: EncoderBackend, max_seq_length: int = 512):
        self.session = ort_session.open_session(export(model_dir, backend))
        self.tokenizer = shared_tokenizer(model_dir / "tokenizer.json")  # the reader's too: never changed here
        self.max_seq_length = max_seq_length
        st_config = _read_json(model_dir / "config_sentence_transformers.json")
        self.prompts = st_config.get("prompts") or {}
        pooling = _read_json(model_dir / "1_Pooling" / "config.json")
        self.cls_pooling = bool(pooling.get("pooling_mode_cls_token"))
        pad = self.tokenizer.token_to_id("<pad>")
        self.pad_id = pad if pad is not None else 0

    def forward(self, texts: list[str], batch_size: int = 16):
        """Yield (index, token embeddings, offsets, pooled vector) per text, longest-first batches."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            batch = [order[j] for j in range(start, min(start + batch_size, len(order)))]
            encodings = [
                e if len(e.ids) <= self.max_seq_length else truncated(self.tokenizer, texts[i], self.max_seq_length)
                for i, e in zip(batch, self.tokenizer.encode_batch([texts[i] for i in batch]))
            ]
            width = max(len(e.ids) for e in encodings)
            ids = np.full((len(batch), width), self.pad_id, np.int64)
            mask = np.zeros((len(batch), width), np.int64)
            for row, e in enumerate(encodings):
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            hidden = ort_session.run(self.session, None, {"input_ids": ids, "attention_mask": mask})[0]
            for row, (i, e) in enumerate(zip(batch, encodings)):
                tokens = hidden[row, : len(e.ids)]
                pooled = tokens[0] if self.cls_pooling else tokens.mean(axis=0)
                yield i, tokens, np.asarray(e.offsets), unit_vector(pooled)

    @property
    def dim(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1] or len(self.encode(["x"])[0]))

    def encode(self, texts: list[str], prompt: str = "", batch_size: int = 16) -> np.ndarray:
        vectors: list = [None] * len(texts)
        for i, _, _, pooled in self.forward([prompt + t for t in texts], batch_size):
            vectors[i] = pooled
        return np.stack(vectors).astype(np.float32)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
