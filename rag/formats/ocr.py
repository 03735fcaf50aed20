"""OCR for scanned PDF pages and images: rapidocr-onnxruntime (Apache-2.0), whose wheel ships the
PP-OCRv4 Chinese detection and recognition models, so it runs offline on ONNX Runtime.

Slow on a laptop CPU (seconds per page), so it runs only where there is no text layer, with a
progress bar per page.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..documents import IMAGE_SUFFIXES, Document, DocumentError
from .layout import Line, TextBuilder

__all__ = ["IMAGE_SUFFIXES", "page_lines", "read_image"]
RENDER_SCALE = 2.0  # 144 dpi: small Chinese print needs it; 1.0 loses strokes
_engine = None
_engine_lock = threading.Lock()


def page_lines(image: np.ndarray) -> list[Line]:
    """Text lines of one page image, top to bottom (OCR's own order). Box heights vary too much
    from line to line to tell headings apart (sizing by them cost 15 points of quote@1 on the
    scanned page, `benchmarks/formats.py`), so OCR lines carry no size; each keeps its box."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
        result, _ = _engine(image)
    height, width = image.shape[:2]
    lines = []
    for corners, text, _score in result or []:
        if text.strip():
            xs, ys = [p[0] for p in corners], [p[1] for p in corners]
            box = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
            lines.append(Line(text.strip(), box=box))
    return lines


def read_image(path: Path, doc_id: str) -> list[Document]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            pages = [np.array(frame.convert("RGB")) for frame in _frames(img)]
    except (UnidentifiedImageError, OSError) as exc:
        raise DocumentError(f"{path}: not a readable image ({exc}).") from None
    out = TextBuilder()
    for number, image in enumerate(pages, 1):
        out.page = number
        out.add_page(page_lines(image))
    doc = out.document(doc_id, "", str(path))
    if not doc.text.strip():
        raise DocumentError(f"{path}: no text found in this image.")
    return [doc]


def _frames(img):
    """Every page of a multi-page TIFF, or the one image."""
    for i in range(getattr(img, "n_frames", 1)):
        img.seek(i)
        yield img
