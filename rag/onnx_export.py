"""Export a torch module to ONNX and quantise it to int8 — shared by the encoder and the reader.

torch's exporter and ONNX Runtime's quantiser both print advice meant for model authors
(TracerWarnings, "consider pre-processing"); someone asking a question on a first run
should see one progress line instead, so both are silenced here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from . import cpu


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """One line on stderr for a slow first-run step: `what … done (12 s)`."""
    t0 = time.perf_counter()
    print(f"{what} …", end="", file=sys.stderr, flush=True)
    try:
        yield
    except BaseException:
        print(" failed", file=sys.stderr, flush=True)
        raise
    print(f" done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs its advice on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def export(module, sample: tuple, input_names: list[str], output_names: list[str], target: Path) -> None:
    """`module` traced on `sample` to `target` (fp32), every axis 0/1 dynamic (batch, sequence)."""
    import torch

    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.onnx")
    with torch.no_grad(), quiet_export():
        torch.onnx.export(
            module,
            sample,
            str(tmp),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in (*input_names, *output_names)},
            opset_version=17,
            dynamo=False,
        )
    tmp.rename(target)


INT8_BITS_ENV = "RAG_INT8_BITS"  # "7" or "8": per-channel weight bits whatever the CPU (`seven_bit`)


def seven_bit(per_channel: bool) -> bool:
    """Whether an int8 export gets 7-bit weights: per channel, on CPUs where 8-bit ones saturate
    (`cpu.int8_saturates`). On such a CPU (AVX2 only) the encoder's query vectors sat at cosine
    0.995 to fp32 with 8-bit per-channel weights and 0.997 with 7-bit; per matrix, one scale
    cannot spare the bit (0.989 with 8 bits, 0.968 with 7), so per-matrix weights stay 8-bit.

    `RAG_INT8_BITS=7` (or 8) overrides the CPU check: to calibrate the 7-bit export on a CPU with
    VNNI (its integer sums are exact there too, so it scores as on AVX2), or where a virtual
    machine hides the CPU's flags."""
    bits = os.environ.get(INT8_BITS_ENV, "").strip()
    if bits not in ("", "7", "8"):
        raise ValueError(f"{INT8_BITS_ENV}={bits!r}: use 7 or 8, or leave it unset to follow the CPU")
    return per_channel and (bits == "7" if bits else cpu.int8_saturates())


def int8_tag(per_channel: bool = True) -> str:
    """Part of an int8 export's file or folder name: "7" for 7-bit weights (`seven_bit`), so an
    export made for one kind of CPU is never served as the other."""
    return "7" if seven_bit(per_channel) else ""


def fuse_transformer(plain: Path, target: Path, heads: int, hidden: int) -> None:
    """`plain` (a BERT-style fp32 export with eager attention) with ONNX Runtime's transformer
    optimizer applied: each layer's attention as one `Attention` op, layer norms with their residual
    add, GELU with its bias, as the optimizer's documented recipe for BERT on CPU does. The int8
    reader's forward pass over the bundled page's three windows went 132 → 121 ms on an AVX2 EPYC
    (with `after_gelu`'s layers fp32; all in int8, faster still, but less exact). Kept only when
    it scores as `plain` does on a padded sample (|Δ logit| ≤ 1e-3): the optimizer matches graph
    patterns, and a model it half-recognises must not be served changed: `target` then holds
    `plain`'s graph."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    # The embedding layer stays as it is: fused, `quantize` would store its layer norm's scale and
    # shift in 8 bits with the lookup tables (tuning-set F1 0.813 → 0.800 over the three sets).
    options.enable_embed_layer_norm = False
    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.onnx")
    with quiet_export():
        fused = optimize_model(
            str(plain), "bert", num_heads=heads, hidden_size=hidden, opt_level=0, optimization_options=options
        )
        fused.save_model_to_file(str(tmp))
    (tmp if _same_outputs(plain, tmp) else plain).replace(target)
    for leftover in (tmp, plain):
        leftover.unlink(missing_ok=True)


def _same_outputs(a: Path, b: Path, tolerance: float = 1e-3) -> bool:
    """Whether two exports of one model give the same outputs on a padded two-row batch of token ids."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(2, 48), dtype=np.int64)  # ids any vocabulary holds
    mask = np.ones_like(ids)
    mask[1, 30:] = 0
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def run(path: Path) -> list:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})  # as `Reader.logits` feeds

    first, second = run(a), run(b)
    valid = mask.astype(bool)
    return all(np.abs(x - y)[valid].max() <= tolerance for x, y in zip(first, second))


GELU_OPS = ("BiasGelu", "Gelu", "FastGelu")  # the optimizer's fused GELUs


def after_gelu(fp32: Path) -> list[str]:
    """The matrix products that take a fused GELU's output: each feed-forward block's second
    layer, whose inputs carry the few huge activations BERT-style models are known for (Bondarenko
    et al., 2021, "Understanding and Overcoming the Challenges of Efficient Transformer
    Quantization"); one int8 scale for a whole batch of them rounds the rest away."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    gelu = {out for node in graph.node if node.op_type in GELU_OPS for out in node.output}
    return [node.name for node in graph.node if node.op_type == "MatMul" and node.input[0] in gelu]


def quantize(fp32: Path, target: Path, per_channel: bool = False, keep_fp32: list[str] | None = None) -> None:
    """Dynamic int8 quantisation of the weights (activations stay fp32); 7-bit weights where
    `seven_bit` says so.

    `per_channel`: one scale per output channel of each weight matrix instead of one per matrix;
    same speed, and much closer to fp32 (the reader's span scores: `reader_export`; the encoder's
    vectors: `EncoderBackend.ONNX_INT8_PER_CHANNEL`).
    `keep_fp32`: names of nodes left unquantised (the reader's `after_gelu`)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.onnx")
    with quiet_export():
        quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=seven_bit(per_channel),
            nodes_to_exclude=keep_fp32 or [],
            # shape inference stops at `fuse_transformer`'s contrib ops; what it cannot type is fp32
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    tmp.rename(target)
