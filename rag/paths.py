"""Where things live: the bundled corpus and Q&A set, knowledge bases, and the model cache.

In a checkout (a `pyproject.toml` beside the package) the design's folders are used: `corpus/`,
`eval/`, `index/`. Installed from a wheel, the corpus and Q&A set ship inside the package and
knowledge bases go to the user's data folder. Environment variables override both:
`RAG_INDEX_DIR` (knowledge bases) and `RAG_CACHE_DIR` (converted and exported models).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT: Path | None = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").is_file() else None


def bundled_corpus() -> Path:
    """The default documents (a page of Qingdao news, January 2025)."""
    return CHECKOUT / "corpus" if CHECKOUT else PACKAGE / "corpus"


def bundled_qa() -> Path:
    """The known Q&A set over the bundled corpus (dev and test splits)."""
    return CHECKOUT / "eval" / "qingdao_qa.jsonl" if CHECKOUT else PACKAGE / "eval_sets" / "qingdao_qa.jsonl"


def index_root() -> Path:
    """The folder holding knowledge bases, one sub-folder each (`default` is the bundled page)."""
    if os.environ.get("RAG_INDEX_DIR"):
        return Path(os.environ["RAG_INDEX_DIR"])
    if CHECKOUT:
        return CHECKOUT / "index"
    import platformdirs

    return platformdirs.user_data_path("rag") / "index"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    """Models converted or exported on first use; shared by every checkout and install."""
    if os.environ.get("RAG_CACHE_DIR"):
        return Path(os.environ["RAG_CACHE_DIR"])
    import platformdirs

    return platformdirs.user_cache_path("rag")
