"""The chat window (Gradio): ask, read the quoted answer, check its source, bring your own documents.

    python -m rag.ui.app            # or: rag chat --host 127.0.0.1 --port 7860 --kb index/mykb

Named API endpoints for `gradio_client`: `/answer` (question, kb name, history → Answer.to_dict()),
`/search` (question, kb name, k, mode → hits). Models and indexes load once per process.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

import rag
from rag import Config, KnowledgeBase
from rag.config import RetrievalMode
from rag.documents import DocumentError, read_path
from rag.paths import index_root

from .render import CSS, example_questions, kb_summary, placeholder, reply_markdown, sources_html

DEFAULT = "default"
_NAME = re.compile(r"[\w\u4e00-\u9fff-]{1,40}")  # used with fullmatch: no newline, no path


class KnowledgeBases:
    """Knowledge bases under `root`, opened on demand and held in a bounded LRU cache (they share one
    encoder and reader, so each costs only its indexes); `default` is the bundled page."""

    def __init__(
        self, root: str | Path | None = None, default_path: str | Path | None = None, config: Config | None = None
    ):
        self.root = Path(root) if root else index_root()
        self.default_path = Path(default_path) if default_path else None
        self.limits = config or Config()
        self._open: OrderedDict[str, KnowledgeBase] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        found = sorted(p.name for p in self.root.glob("*") if (p / "CURRENT").exists() and p.name != DEFAULT)
        return [DEFAULT] + [n for n in found if _user_name(n)]

    def get(self, name: str | None) -> KnowledgeBase:
        name = name or DEFAULT
        with self._lock:
            if name in self._open:
                self._open.move_to_end(name)
                return self._open[name]
        if name == DEFAULT:
            kb = KnowledgeBase.open(self.default_path) if self.default_path else rag.default_kb()
        else:
            if not _user_name(name) or not (self.root / name / "CURRENT").exists():
                raise ValueError(f"没有名为“{name[:40]}”的知识库。")
            kb = KnowledgeBase.open(self.root / name)
        return self._remember(name, kb)

    def _remember(self, name: str, kb: KnowledgeBase) -> KnowledgeBase:
        with self._lock:
            kb = self._open.setdefault(name, kb)
            self._open.move_to_end(name)
            while len(self._open) > max(1, self.limits.max_open_knowledge_bases):
                self._open.popitem(last=False)
            return kb

    def upload(self, name: str, files: list[str], progress=None) -> tuple[KnowledgeBase, list[str], list[str]]:
        """Create knowledge base `name` from files, or add them to it. Returns (kb, added, failed).

        Files are indexed, then their temporary copies are deleted; a file that cannot be read is
        named in `failed` and the rest go in."""
        try:
            return self._upload(name, files)
        finally:
            for path in files:
                _delete_upload(Path(path))

    def _upload(self, name: str, files: list[str]) -> tuple[KnowledgeBase, list[str], list[str]]:
        if not _user_name(name or ""):
            raise ValueError(
                "知识库名称只能包含中文、字母、数字、下划线或短横线"
                "（最多 40 个字，不能叫 default，不能以 eval- 开头）。"
            )
        if len(files) > self.limits.max_upload_files:
            raise ValueError(f"一次最多上传 {self.limits.max_upload_files} 个文件（这次 {len(files)} 个）。")
        folder = self.root / name
        if not (folder / "CURRENT").exists() and len(self.names()) > self.limits.max_knowledge_bases:
            raise ValueError(f"知识库已达上限（{self.limits.max_knowledge_bases} 个）；请向已有知识库添加文件。")
        docs, failed = [], []
        for path in files:
            try:
                size_mb = Path(path).stat().st_size / 2**20
                if size_mb > self.limits.max_upload_mb:
                    raise DocumentError(f"{path}: 文件 {size_mb:.0f} MB，超过 {self.limits.max_upload_mb} MB 的上限")
                found = [d for d in read_path(Path(path)) if d.text.strip()]
                if not found:
                    raise DocumentError(f"{path}: 文件是空的")
                docs.extend(found)
            except (DocumentError, OSError) as exc:
                failed.append(f"{Path(path).name}：{_short(exc)}")
        if not docs:
            raise ValueError("没有可以索引的文件。" + (" 失败：" + "；".join(failed) if failed else ""))
        kb = self.get(name) if (folder / "CURRENT").exists() else KnowledgeBase(path=folder)
        kb.update(add=docs, progress=True)  # under the write lock; questions see old or new, never neither
        return self._remember(name, kb), [d.doc_id for d in docs], failed


def _user_name(name: str) -> bool:
    """A knowledge base people may open or create: not the bundled one, not an evaluation index."""
    return bool(_NAME.fullmatch(name)) and name != DEFAULT and not name.startswith("eval-")


def _delete_upload(path: Path) -> None:
    """Gradio keeps uploads in its temp folder; once indexed they are not needed there."""
    temp = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    try:
        if path.resolve().is_relative_to(temp):
            path.unlink(missing_ok=True)
    except OSError:
        pass


@contextlib.contextmanager
def _client_errors() -> Iterator[None]:
    """A bad request's message reaches the API client (gradio_client shows it), not only the server log."""
    try:
        yield
    except (ValueError, KeyError, RuntimeError) as exc:
        raise gr.Error(_short(exc)) from exc


def _short(exc: Exception) -> str:
    """The error message without a leading temp-file path (the UI names files itself)."""
    message = str(exc.args[0] if exc.args else exc)
    return re.sub(r"^/\S*?: ", "", message)


def build_app(kbs: KnowledgeBases | None = None, default_kb: str = DEFAULT) -> gr.Blocks:
    kbs = kbs or KnowledgeBases()
    first = kbs.get(default_kb)
    examples = example_questions(first)

    def answer_api(question: str, kb_name: str = DEFAULT, history: list[str] | None = None) -> dict:
        """Answer a question; returns Answer.to_dict() (citations quote the source verbatim)."""
        with _client_errors():
            return kbs.get(kb_name).answer(question, history=history or []).to_dict()

    def search_api(question: str, kb_name: str = DEFAULT, k: int = 5, mode: str = "hybrid") -> list[dict]:
        """Ranked passages with keyword, dense and fused scores."""
        with _client_errors():
            return [h.to_dict() for h in kbs.get(kb_name).search(question, k=int(k), mode=mode)]

    def respond(message, chat, asked, kb_name):
        """Stream the reply; the question box is emptied at once (not after), so typing a
        follow-up while the reply streams is never wiped out."""
        keep = gr.update()
        message = (message or "").strip()
        if not message:
            gr.Warning("请输入问题。")
            yield chat, asked, keep, keep, "", keep
            return
        chat = chat + [{"role": "user", "content": message}, {"role": "assistant", "content": "正在检索…"}]
        yield chat, asked, keep, keep, message, ""
        try:
            kb = kbs.get(kb_name)
            answer = kb.answer(message, history=asked)
        except ValueError as exc:
            chat[-1]["content"] = f"**无法回答：** {html.escape(_short(exc))}"
            yield chat, asked, keep, keep, message, keep
            return
        reply = reply_markdown(answer)
        searched = f"实际检索：{answer.searched}" if answer.searched != message else f"检索：{message}"
        for end in range(0, len(reply), 24):  # stream the reply in
            chat[-1]["content"] = reply[: end + 24]
            yield chat, asked, keep, keep, searched, keep
            time.sleep(0.01)
        chat[-1]["content"] = reply
        yield chat, asked + [message], sources_html(kb, answer), answer.text, searched, keep

    def retrieval_view(question, kb_name, k, mode):
        if not (question or "").strip():
            gr.Warning("请输入问题。")
            return []
        hits = kbs.get(kb_name).search(question, k=int(k), mode=mode)
        fmt = lambda v: "–" if v is None else round(v, 4)
        return [
            [
                i + 1,
                h.title,
                fmt(h.keyword_score),
                fmt(h.dense_score),
                round(h.score, 4),
                " ".join(h.text.split())[:160],
            ]
            for i, h in enumerate(hits)
        ]

    def upload(files, name, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 (Gradio's idiom)
        if not files:
            gr.Warning("请先选择文件。")
            return gr.update(), "没有选择文件。"
        try:
            kb, added, failed = kbs.upload((name or "").strip(), [f if isinstance(f, str) else f.name for f in files])
        except (ValueError, RuntimeError) as exc:  # bad input, a busy writer, a full disk
            gr.Warning(_short(exc))
            return gr.update(), f"**未能索引：** {html.escape(_short(exc))}"
        status = (
            f"已索引到知识库“{html.escape(name)}”：{html.escape(', '.join(added))}"
            f"（共 {len(kb.documents)} 篇文档，{len(kb.chunks)} 个段落）"
        )
        if failed:
            status += "\n\n**未能索引：** " + html.escape("；".join(failed))
            gr.Warning("部分文件未能索引：" + "；".join(failed))
        return gr.update(choices=kbs.names(), value=name), status

    def switch(kb_name):
        kb = kbs.get(kb_name)
        qs = example_questions(kb)
        return (
            [],
            [],
            sources_html(kb, None),
            "",
            gr.update(samples=[[q] for q in qs]),
            gr.update(placeholder=placeholder(qs)),
            kb_summary(kb_name, kb),
        )

    with gr.Blocks(title=f"文档问答 · {default_kb}") as app:
        gr.Markdown("## 文档问答 · 原文引用作答\n答案逐字引用原文，并注明出处；资料里没有的，直接说没有。")
        summary = gr.Markdown(kb_summary(default_kb, first), elem_id="kb-summary")
        with gr.Row():
            kb_name = gr.Dropdown(kbs.names(), value=default_kb, label="知识库", scale=3)
        asked = gr.State([])
        with gr.Tabs():
            with gr.Tab("问答"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chat = gr.Chatbot(
                            label="对话", height=460, buttons=["copy", "copy_all"], sanitize_html=False, elem_id="chat"
                        )
                        question = gr.Textbox(label="问题", placeholder=placeholder(examples), elem_id="question")
                        with gr.Row():
                            send = gr.Button("发送", variant="primary", elem_id="send")
                            clear = gr.Button("清空对话")
                        searched = gr.Markdown(elem_id="searched")
                        sample = gr.Dataset(components=[question], samples=[[q] for q in examples], label="示例问题")
                        copy_text = gr.Textbox(
                            label="答案与引用（可复制）", lines=4, buttons=["copy"], interactive=False
                        )
                    with gr.Column(scale=2):
                        gr.Markdown("### 引用来源")
                        sources = gr.HTML(sources_html(first, None), elem_id="sources")
            with gr.Tab("检索测试"):
                with gr.Row():
                    r_question = gr.Textbox(label="问题", scale=4)
                    r_k = gr.Slider(1, 20, value=5, step=1, label="返回段落数 top-k")
                    r_mode = gr.Radio([m.value for m in RetrievalMode], value="hybrid", label="检索方式")
                r_go = gr.Button("检索", variant="primary")
                r_table = gr.Dataframe(
                    headers=["排名", "标题", "关键词分", "向量分", "融合分", "段落"], wrap=True, interactive=False
                )
            with gr.Tab("知识库管理"):
                gr.Markdown(
                    "上传 .txt、.md、.jsonl、.pdf（有文字层）、.docx、.html 文件，"
                    "新建知识库或添加到已有知识库（同名即添加）。"
                )
                files = gr.File(label="文件", file_count="multiple", type="filepath")
                new_name = gr.Textbox(label="知识库名称", value="my_docs")
                up_go = gr.Button("索引上传的文件", variant="primary")
                up_status = gr.Markdown()

        outputs = [chat, asked, sources, copy_text, searched]
        for trigger in (send.click, question.submit):
            trigger(respond, [question, chat, asked, kb_name], outputs + [question], api_visibility="private")
        sample.click(lambda row: row[0], sample, question, api_visibility="private")
        clear.click(lambda: ([], [], sources_html(first, None), "", ""), None, outputs, api_visibility="private")
        r_go.click(retrieval_view, [r_question, kb_name, r_k, r_mode], r_table, api_visibility="private")
        up_go.click(
            upload,
            [files, new_name],
            [kb_name, up_status],
            concurrency_id="indexing",
            concurrency_limit=1,
            api_name="upload",
        )
        kb_name.change(
            switch, kb_name, [chat, asked, sources, copy_text, sample, question, summary], api_visibility="private"
        )
        gr.api(answer_api, api_name="answer")
        gr.api(search_api, api_name="search")
    # answering is CPU-bound and short; uploads run in their own queue so they never block questions
    app.queue(default_concurrency_limit=16, max_size=256)
    return app


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    kb: str = DEFAULT,
    share: bool = False,
    auth: list[tuple[str, str]] | None = None,
    config: Config | None = None,
    **kwargs,
):
    """Serve the chat window. Off loopback, anyone who can reach the port can ask and upload:
    pass `auth` (user, password pairs) to require a login."""
    config = config or Config()
    kbs = KnowledgeBases(config=config)
    name = DEFAULT
    if kb != DEFAULT:
        path = Path(kb)
        kbs.root = path.parent if path.parent != Path("") else index_root()
        name = path.name
    if (host not in LOOPBACK or share) and not auth:
        print(
            f"warning: serving on {host}{' and a public link' if share else ''} with no login; anyone who can "
            "reach it can ask and upload. Use --auth USER:PASSWORD (or --auth-file) to require one.",
            file=sys.stderr,
        )
    app = build_app(kbs, name)
    return app.launch(
        server_name=host,
        server_port=port,
        share=share,
        css=CSS,
        auth=auth or None,
        max_file_size=f"{config.max_upload_mb}mb",
        **kwargs,
    )


if __name__ == "__main__":
    launch()
