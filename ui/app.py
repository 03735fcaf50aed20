"""The chat window (Gradio): ask, read the quoted answer, check its source, bring your own documents.

    python -m rag.ui.app            # or: rag chat --host 127.0.0.1 --port 7860 --kb index/mykb

Named API endpoints for `gradio_client`: `/answer` (question, kb name, history → Answer.to_dict()),
`/search` (question, kb name, k, mode → hits). Models and indexes load once per process.
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from rag import Config
from rag.config import RetrievalMode
from rag.knowledge_bases import DEFAULT, LOOPBACK, KnowledgeBases, root_and_name, short_message

from .render import CSS, example_questions, kb_summary, placeholder, reply_markdown, sources_html


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
        raise gr.Error(short_message(exc)) from exc


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
            chat[-1]["content"] = f"**无法回答：** {html.escape(short_message(exc))}"
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
        paths = [f if isinstance(f, str) else f.name for f in files]
        try:
            kb, added, failed = kbs.upload((name or "").strip(), paths)
        except (ValueError, RuntimeError) as exc:  # bad input, a busy writer, a full disk
            gr.Warning(short_message(exc))
            return gr.update(), f"**未能索引：** {html.escape(short_message(exc))}"
        finally:
            for path in paths:
                _delete_upload(Path(path))
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
        kbs.root, name = root_and_name(kb)
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
