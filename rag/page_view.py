"""A page of a PDF or an image with a quote highlighted where it stands, so a reader can check the
quote against the original itself, not only against our extracted text.

The boxes come from the PDF text layer (pdfium character boxes, joined per line) or from OCR (line
boxes); see `Document.boxes_of`. Rendering is pypdfium2 for PDFs and Pillow for images.
"""

from __future__ import annotations

import io
from pathlib import Path

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the page, top-left origin

HIGHLIGHT = (253, 224, 71, 110)  # translucent yellow, the sources panel's <mark> colour
OUTLINE = (217, 119, 6, 255)


class PageViewError(ValueError):
    """The original cannot be rendered (missing, damaged, or no such page)."""


def render(path: str | Path, page: int, rects: list[Rect], width: int = 900) -> bytes:
    """Page `page` (1-based) of a PDF or image file, `width` pixels wide, with `rects` highlighted; JPEG bytes."""
    from PIL import Image, ImageDraw

    image = _page_image(Path(path), page, width)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    w, h = image.size
    pad = max(2, w // 300)
    for x0, y0, x1, y1 in rects:
        box = (x0 * w - pad, y0 * h - pad, x1 * w + pad, y1 * h + pad)
        draw.rectangle(box, fill=HIGHLIGHT, outline=OUTLINE, width=max(1, pad // 2))
    out = io.BytesIO()
    Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB").save(out, "JPEG", quality=82)
    return out.getvalue()


def _page_image(path: Path, page: int, width: int):
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() == ".pdf":
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise PageViewError(f"{path}: cannot open this PDF ({exc}).") from None
        try:
            if not 1 <= page <= len(pdf):
                raise PageViewError(f"{path} has {len(pdf)} pages, not a page {page}.")
            pdf_page = pdf[page - 1]
            scale = width / max(1.0, pdf_page.get_size()[0])
            return pdf_page.render(scale=scale).to_pil().convert("RGB")
        finally:
            pdf.close()
    try:
        with Image.open(path) as img:
            if page > getattr(img, "n_frames", 1) or page < 1:
                raise PageViewError(f"{path} has no page {page}.")
            img.seek(page - 1)
            frame = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise PageViewError(f"{path}: not a readable image ({exc}).") from None
    return frame.resize((width, max(1, round(frame.height * width / frame.width))))
