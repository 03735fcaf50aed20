"""`rag serve`: an HTTP API for programs — REST under `/v1` and OpenAI-compatible chat completions —
with the chat window mounted on the same server.

    rag serve --port 8000                     # http://127.0.0.1:8000/docs, chat window at /
    curl -s localhost:8000/v1/answer -H 'Content-Type: application/json' \
         -d '{"question": "2024年青岛市进出口达多少亿元？"}'

Every error is JSON in OpenAI's shape, `{"error": {"message", "type", "code"}}`, so OpenAI clients
show the message. A chat completion's reply is the answer text with `[n]` markers; the citations
(document, title, verbatim quote, character offsets, page or heading) travel as structured data in
the extra top-level field `citations` (and in the last chunk of a stream).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from .config import Config, RetrievalMode
from .kb import MAX_K
from .knowledge_bases import DEFAULT, KnowledgeBases, short_message, user_name
from .milvus_index import MilvusStoreError
from .schema import Answer
from .store import StoreWriteError, WriterBusyError

API_VERSION = "v1"
MAX_JSON_BYTES = 2**20  # a question is at most 2,000 characters; no JSON request needs more
STREAM_PIECE = 16  # characters per streamed chunk: the reply is ready at once, chunks only pace the display


class AnswerRequest(BaseModel):
    question: str = Field(examples=["2024年青岛市进出口达多少亿元？"])
    kb: str = DEFAULT
    history: list[str] = Field(default_factory=list, description="earlier questions of the conversation")
    mode: RetrievalMode | None = None


class SearchRequest(BaseModel):
    question: str
    kb: str = DEFAULT
    k: int = Field(5, ge=1, le=MAX_K)
    mode: RetrievalMode | None = None


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """Plain text of the message (OpenAI allows a list of typed parts)."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: str = DEFAULT
    messages: list[ChatMessage]
    stream: bool = False
    # accepted for compatibility and ignored: the answer is extracted, not sampled
    temperature: float | None = None
    max_tokens: int | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def create_app(
    kbs: KnowledgeBases | None = None, api_keys: set[str] | None = None, chat_window: bool = True
) -> FastAPI:
    """The API app; `api_keys` (when given) are required as `Authorization: Bearer KEY` on `/v1`,
    and open the chat window's login as its password."""
    kbs = kbs or KnowledgeBases()
    keys = set(api_keys or ())
    app = FastAPI(
        title="rag — Chinese document Q&A with verbatim citations",
        version=API_VERSION,
        docs_url="/docs",
        openapi_url=f"/{API_VERSION}/openapi.json",
    )
    app.state.api_keys = keys
    app.state.knowledge_bases = kbs
    upload_bytes = kbs.config.max_upload_files * kbs.config.max_upload_mb * 2**20

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        """Refuse an oversized API body before reading it: uploads up to the upload limits, JSON up
        to 1 MB (the mounted chat window keeps Gradio's own limit)."""
        path = request.url.path
        limit = upload_bytes if path.endswith("/documents") else MAX_JSON_BYTES
        size = request.headers.get("content-length", "")
        if path.startswith(f"/{API_VERSION}/") and size.isdigit() and int(size) > limit:
            return _error(413, f"request body of {int(size):,} bytes is over the {limit:,}-byte limit", "too_large")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.code)

    @app.exception_handler(MilvusStoreError)
    async def store_unavailable(_: Request, exc: MilvusStoreError) -> JSONResponse:
        return _error(503, short_message(exc), "store_unavailable")  # the server is down: try again later

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "http_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return _error(422, f"invalid request: {where}", "invalid_request")

    def open_kb(name: str):
        try:
            return kbs.get(name)
        except ValueError as exc:
            raise ApiError(404, short_message(exc), "knowledge_base_not_found") from None

    def answer(name: str, question: str, history: list[str], mode: RetrievalMode | None) -> Answer:
        kb = open_kb(name)
        try:
            return kb.answer(question, mode=mode, history=history)
        except ValueError as exc:  # empty or over-long question
            raise ApiError(400, short_message(exc), "invalid_question") from None

    v1 = f"/{API_VERSION}"
    auth = [Depends(_authorized)]

    @app.get(f"{v1}/health", tags=["service"])
    def health() -> dict:
        return {"status": "ok", "knowledge_bases": len(kbs.names()), "worker": os.getpid()}

    @app.get(f"{v1}/knowledge-bases", tags=["knowledge bases"], dependencies=auth)
    def knowledge_bases() -> dict:
        return {"data": [kbs.describe(name) for name in kbs.names()]}

    @app.post(f"{v1}/answer", tags=["questions"], dependencies=auth)
    def answer_endpoint(request: AnswerRequest) -> dict:
        """The answer as data: short answer, verbatim quotes with offsets, or an abstention."""
        return answer(request.kb, request.question, request.history, request.mode).to_dict()

    @app.post(f"{v1}/search", tags=["questions"], dependencies=auth)
    def search(request: SearchRequest) -> dict:
        kb = open_kb(request.kb)
        try:
            hits = kb.search(request.question, k=request.k, mode=request.mode)
        except ValueError as exc:
            raise ApiError(400, short_message(exc), "invalid_question") from None
        return {"data": [h.to_dict() for h in hits]}

    @app.post(f"{v1}/knowledge-bases/{{name}}/documents", tags=["knowledge bases"], dependencies=auth)
    def upload(name: str, files: Annotated[list[UploadFile], File(description="documents to add")]) -> dict:
        """Create knowledge base `name` or add to it (same readers and limits as the chat window)."""
        if len(files) > kbs.config.max_upload_files:
            raise ApiError(413, f"at most {kbs.config.max_upload_files} files per upload", "too_many_files")
        folder = Path(tempfile.mkdtemp(prefix="rag-upload-"))
        try:
            paths, too_big = [], []
            for f in files:
                path = folder / Path(f.filename or "upload").name  # base name only: no path from the client
                if _save_upload(f, path, kbs.config.max_upload_mb * 2**20):
                    paths.append(str(path))
                else:
                    too_big.append(f"{path.name}：文件超过 {kbs.config.max_upload_mb} MB 的上限")
            try:
                kb, added, failed = kbs.upload(name, paths) if paths else (None, [], [])
            except WriterBusyError as exc:
                raise ApiError(409, short_message(exc), "writer_busy") from None
            except StoreWriteError as exc:
                raise ApiError(507, short_message(exc), "store_write_failed") from None
            except ValueError as exc:
                raise ApiError(400, short_message(exc) + _listed(too_big), "no_readable_files") from None
            if kb is None:
                raise ApiError(413, "没有可以索引的文件。" + _listed(too_big), "file_too_large")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"added": added, "failed": too_big + failed, **kbs.describe(name)}

    @app.delete(f"{v1}/knowledge-bases/{{name}}/documents/{{doc_id:path}}", tags=["knowledge bases"], dependencies=auth)
    def remove(name: str, doc_id: str) -> dict:
        if not user_name(name):
            raise ApiError(403, f"knowledge base {name!r} cannot be changed here", "read_only")
        kb = open_kb(name)
        try:
            kb.remove([doc_id])
        except KeyError:
            raise ApiError(404, f"no document {doc_id!r} in {name!r}", "document_not_found") from None
        except WriterBusyError as exc:
            raise ApiError(409, short_message(exc), "writer_busy") from None
        return {"removed": doc_id, **kbs.describe(name)}

    @app.get(f"{v1}/models", tags=["OpenAI-compatible"], dependencies=auth)
    def models() -> dict:
        """One model per knowledge base: the model name picks the documents to answer from."""
        return {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": "rag"} for n in kbs.names()],
        }

    @app.post(f"{v1}/chat/completions", tags=["OpenAI-compatible"], dependencies=auth, response_model=None)
    def chat_completions(request: ChatRequest) -> dict | StreamingResponse:
        """The last user message is the question; earlier user messages are the follow-up history."""
        asked = [m.text() for m in request.messages if m.role == "user"]
        if not asked:
            raise ApiError(400, "messages hold no user message to answer", "invalid_request")
        result = answer(request.model, asked[-1], asked[:-1], None)
        reply = _completion_id(), int(time.time()), request.model
        if request.stream:
            return StreamingResponse(_stream(result, *reply), media_type="text/event-stream")
        cid, created, model = reply
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            **_extra(result),
        }

    if chat_window:
        import gradio as gr

        from .ui.app import build_app
        from .ui.render import CSS

        login = (lambda _user, password: any(secrets.compare_digest(password, k) for k in keys)) if keys else None
        app = gr.mount_gradio_app(app, build_app(kbs), path="/", auth=login, css=CSS)
    return app


_bearer = HTTPBearer(auto_error=False)


def _authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """With keys configured, `/v1` (but health) needs `Authorization: Bearer KEY`."""
    keys = request.app.state.api_keys
    if not keys:
        return
    given = credentials.credentials if credentials else ""
    if not any(secrets.compare_digest(given, key) for key in keys):
        raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer KEY`", "invalid_api_key")


def _extra(result: Answer) -> dict:
    """What an OpenAI reply has no field for: citations, the short answer, whether it abstained, how sure it is."""
    return {
        "citations": [c.to_dict() for c in result.citations],
        "short_answer": result.short,
        "abstained": result.abstained,
        "confidence": result.confidence,
    }


def _stream(result: Answer, cid: str, created: int, model: str) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; the last chunk carries the citations."""

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for i in range(0, len(result.text), STREAM_PIECE):
        yield chunk({"content": result.text[i : i + STREAM_PIECE]})
    yield chunk({}, "stop", **_extra(result))
    yield "data: [DONE]\n\n"


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _error(status: int, message: str, code: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


def _listed(problems: list[str]) -> str:
    return (" 失败：" + "；".join(problems)) if problems else ""


def _save_upload(upload: UploadFile, path: Path, limit: int) -> bool:
    """Copy an upload to `path` in pieces, stopping (False) as soon as it passes `limit` bytes."""
    size = 0
    with path.open("wb") as out:
        while piece := upload.file.read(1 << 20):
            size += len(piece)
            if size > limit:
                break
            out.write(piece)
    if size > limit:
        path.unlink(missing_ok=True)
        return False
    return True


def app_from_environment() -> FastAPI:
    """The app as `rag serve --workers N` starts it in each worker process (settings in `RAG_SERVE`)."""
    settings = json.loads(os.environ.get("RAG_SERVE", "{}"))
    config = Config().replace(**settings.get("answer_step", {}))
    kbs = KnowledgeBases(root=settings.get("root"), default_path=settings.get("default_path"), config=config)
    return create_app(kbs, set(settings.get("api_keys", [])), chat_window=settings.get("chat_window", True))
