"""Named knowledge bases under one folder, as a server holds them: opened on demand, kept in a
bounded cache, created and extended by uploads with limits. The chat window and `rag serve` share it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

from . import default_kb, store
from .config import Config
from .documents import DocumentError, read_path
from .kb import EVAL_INDEX_PREFIX, KnowledgeBase
from .milvus_index import MilvusStoreError
from .paths import index_root
from .zh import HAN

log = logging.getLogger(__name__)

DEFAULT = "default"
REFRESH_SECONDS = 1.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # hosts only this machine can reach
_NAME = re.compile(rf"[\w{HAN}-]{{1,40}}")  # used with fullmatch: no newline, no path


class KnowledgeBases:
    """Knowledge bases under `root`, opened on demand and held in a bounded LRU cache (they share one
    encoder and reader, so each costs only its indexes); `default` is the bundled page.

    `config` sets the limits and the answer step (`composer`, `reader_precision`) of every one served."""

    def __init__(
        self, root: str | Path | None = None, default_path: str | Path | None = None, config: Config | None = None
    ):
        self.root = Path(root) if root else index_root()
        self.default_path = Path(default_path) if default_path else None
        self.config = config or Config()
        self._open: OrderedDict[str, KnowledgeBase] = OrderedDict()
        self._checked: dict[str, float] = {}  # when each open one last looked for a newer saved version
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        found = sorted(p.name for p in self.root.glob("*") if (p / "CURRENT").exists() and p.name != DEFAULT)
        return [DEFAULT] + [n for n in found if user_name(n)]

    def describe(self, name: str) -> dict:
        """Name and size, from the open knowledge base or its manifest (without loading it)."""
        with self._lock:
            kb = self._open.get(name)
        if kb is None and name == DEFAULT:
            kb = self.get(name)
        if kb is not None:
            return {"name": name, "documents": len(kb.documents), "chunks": len(kb.chunks)}
        try:
            manifest = store.read_manifest(self.root / name)
        except (OSError, store.IndexMismatchError, MilvusStoreError) as exc:  # damaged: say so, list the rest
            return {"name": name, "documents": None, "chunks": None, "error": short_message(exc)}
        return {"name": name, "documents": manifest.get("documents"), "chunks": manifest.get("chunks")}

    def get(self, name: str | None) -> KnowledgeBase:
        name = name or DEFAULT
        with self._lock:
            kb = self._open.get(name)
            if kb is not None:
                self._open.move_to_end(name)
                due = time.monotonic() - self._checked.get(name, 0.0) > REFRESH_SECONDS
                if due:
                    self._checked[name] = time.monotonic()
        if kb is not None:
            if due:
                try:
                    kb.refresh()  # another worker or `rag index --add` may have saved a new version
                except (OSError, store.IndexMismatchError, MilvusStoreError) as exc:  # keep the version we have
                    log.warning("%s: not switching to the newly saved version: %s", name, exc)
            return kb
        if name == DEFAULT:
            kb = KnowledgeBase.open(self.default_path) if self.default_path else default_kb()
        else:
            if not user_name(name) or not (self.root / name / "CURRENT").exists():
                raise ValueError(f"没有名为“{name[:40]}”的知识库。")
            kb = KnowledgeBase.open(self.root / name)
        return self._remember(name, kb)

    def _remember(self, name: str, kb: KnowledgeBase) -> KnowledgeBase:
        # the bundled page's knowledge base is one per process (`rag.default_kb`): it follows this server's choice
        kb.choose_answer_step(self.config.composer, self.config.reader_precision)
        with self._lock:
            kb = self._open.setdefault(name, kb)
            self._open.move_to_end(name)
            while len(self._open) > max(1, self.config.max_open_knowledge_bases):
                self._open.popitem(last=False)
            return kb

    def upload(self, name: str, files: list[str]) -> tuple[KnowledgeBase, list[str], list[str]]:
        """Create knowledge base `name` from files, or add them to it. Returns (kb, added, failed);
        a file that cannot be read is named in `failed` and the rest go in."""
        if not user_name(name or ""):
            raise ValueError(
                "知识库名称只能包含中文、字母、数字、下划线或短横线"
                "（最多 40 个字，不能叫 default，不能以 eval- 开头）。"
            )
        if len(files) > self.config.max_upload_files:
            raise ValueError(f"一次最多上传 {self.config.max_upload_files} 个文件（这次 {len(files)} 个）。")
        folder = self.root / name
        if not (folder / "CURRENT").exists() and len(self.names()) > self.config.max_knowledge_bases:
            raise ValueError(f"知识库已达上限（{self.config.max_knowledge_bases} 个）；请向已有知识库添加文件。")
        docs, failed = [], []
        for path in files:
            try:
                size_mb = Path(path).stat().st_size / 2**20
                if size_mb > self.config.max_upload_mb:
                    raise DocumentError(f"{path}: 文件 {size_mb:.0f} MB，超过 {self.config.max_upload_mb} MB 的上限")
                found = [d for d in read_path(Path(path)) if d.text.strip()]
                if not found:
                    raise DocumentError(f"{path}: 文件是空的")
                docs.extend(found)
            except (DocumentError, OSError) as exc:
                failed.append(f"{Path(path).name}：{short_message(exc)}")
        if not docs:
            raise ValueError("没有可以索引的文件。" + (" 失败：" + "；".join(failed) if failed else ""))
        kb = self.get(name) if (folder / "CURRENT").exists() else KnowledgeBase(path=folder)
        kb.update(add=docs, progress=True)  # under the write lock; questions see old or new, never neither
        return self._remember(name, kb), [d.doc_id for d in docs], failed


def root_and_name(kb_path: str) -> tuple[Path, str]:
    """`--kb index/mykb` → (the folder holding it, its name); a bare name lives in the index root."""
    path = Path(kb_path)
    return (path.parent if path.parent != Path("") else index_root()), path.name


def user_name(name: str) -> bool:
    """A knowledge base people may open or create: not the bundled one, not an evaluation index."""
    return bool(_NAME.fullmatch(name)) and name != DEFAULT and not name.startswith(EVAL_INDEX_PREFIX)


def short_message(exc: Exception) -> str:
    """The error message without a leading temp-file path (callers name files themselves)."""
    message = str(exc.args[0] if exc.args else exc)
    return re.sub(r"^/\S*?: ", "", message)
