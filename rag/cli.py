"""`rag` command line: index, ask, search."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import click

from . import Config, KnowledgeBase, default_kb
from .config import ComposerKind, EncoderBackend, MilvusKeyword, ReaderPrecision, RetrievalMode, StoreKind
from .documents import DocumentError
from .embedding import ModelLoadError
from .kb import IndexMismatchError, check_question
from .milvus_index import MilvusStoreError
from .ray_encoding import RayEncodingError
from .reader_export import ReaderWeightsError
from .store import StoreWriteError, WriterBusyError

HELD_OUT_SPLITS = ("test", "odd")
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    DocumentError,
    IndexMismatchError,
    ModelLoadError,
    KeyError,
    ReaderWeightsError,
    RayEncodingError,
    WriterBusyError,
    StoreWriteError,
    PermissionError,
    MilvusStoreError,
)


def _fail(exc: Exception) -> None:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _kb(path: str | None) -> KnowledgeBase:
    return KnowledgeBase.open(path) if path else default_kb()


BACKEND_OPTION = click.option(
    "--backend",
    type=click.Choice([b.value for b in EncoderBackend]),
    default=None,
    help="Encoder backend (default: the config's).",
)


STORE_OPTIONS = [
    click.option(
        "--store",
        type=click.Choice([k.value for k in StoreKind]),
        default=None,
        help="Where chunk vectors and keywords are searched: local FAISS+BM25 files (default) or Milvus.",
    ),
    click.option(
        "--uri",
        default=None,
        help="Milvus: http://host:19530 for a server, or a .db file for milvus-lite (default: next to --out). "
        "Credentials come from $RAG_MILVUS_TOKEN.",
    ),
    click.option(
        "--milvus-keyword",
        type=click.Choice([k.value for k in MilvusKeyword]),
        default=None,
        help="Milvus keyword search: our jieba tokens as sparse vectors (default) or Milvus's own BM25.",
    ),
]


def store_options(command):
    for option in reversed(STORE_OPTIONS):
        command = option(command)
    return command


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Show progress and library messages.")
def main(verbose: bool) -> None:
    """Ask questions about your Chinese documents; answers quote the source verbatim."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not verbose:
        for name in ("jieba", "bm25s", "ray", "pymilvus"):
            logging.getLogger(name).setLevel(logging.ERROR)
        import transformers

        transformers.logging.set_verbosity_error()


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", required=True, help="Index folder, e.g. index/mykb.")
@click.option("--model", default=None, help="sentence-transformers model name or folder (default: offline e5-small).")
@click.option("--user-dict", default=None, help="jieba user dictionary for domain terms.")
@BACKEND_OPTION
@click.option("--add", "add_to", is_flag=True, help="Add to the existing index at --out instead of rebuilding.")
@click.option(
    "--update",
    is_flag=True,
    help="Sync the existing index at --out with SOURCES: re-read changed files only (by hash), drop deleted ones.",
)
@store_options
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    help="Encode on Ray: `--ray` starts a local Ray, `--ray ADDRESS` joins a cluster. Resumes after a crash.",
)
@click.option("--ray-workers", type=int, default=None, help="Ray encoder actors (default: one per CPU).")
def index(
    sources, out, model, user_dict, backend, add_to, update, store, uri, milvus_keyword, ray_address, ray_workers
):
    """Build (or extend) a knowledge base from .txt/.md/.jsonl/.pdf/.docx/.html files and folders."""
    chunk_encoder = None
    try:
        config = Config().replace(
            model=model, user_dict=user_dict, backend=backend, store=store, uri=uri, milvus_keyword=milvus_keyword
        )
        if ray_address:
            chunk_encoder = _ray_encoder(ray_address, ray_workers, config, out)
        if update or add_to:
            if store or uri or milvus_keyword:
                raise ValueError("--store, --uri and --milvus-keyword shape a new index; drop them with --add/--update")
            kb = KnowledgeBase.open(out, Config().replace(model=model) if model else None)
            if chunk_encoder is not None:
                kb.chunk_encoder = chunk_encoder
        if update:
            report = kb.sync(sources, progress=True)
            for problem in report["failed"]:
                click.echo(f"skipped: {problem}", err=True)
            click.echo(
                f"{out}: {len(report['added'])} read, {len(report['removed'])} removed, "
                f"{len(report['unchanged'])} unchanged; {len(kb.documents)} documents, {len(kb.chunks)} chunks"
            )
        elif add_to:
            ids = kb.add(sources, progress=True)
            click.echo(f"added {len(ids)} documents to {out}: {len(kb.documents)} documents, {len(kb.chunks)} chunks")
        else:
            kb = KnowledgeBase.build(sources, path=out, config=config, progress=True, chunk_encoder=chunk_encoder)
            click.echo(f"indexed {len(kb.documents)} documents, {len(kb.chunks)} chunks into {out}")
        if chunk_encoder is not None:
            chunk_encoder.finished()
    except USER_ERRORS as exc:
        _fail(exc)


@main.command()
@click.argument("kb_path", metavar="KB")
@click.option("--out", required=True, help="Folder of the copy, e.g. index/mykb-milvus.")
@store_options
def copy(kb_path, out, store, uri, milvus_keyword):
    """Copy KB into another store (e.g. `--store milvus --uri http://host:19530`) without encoding again."""
    try:
        kb = KnowledgeBase.open(kb_path)
        target = kb.config.replace(store=store, uri=uri, milvus_keyword=milvus_keyword)
        copied = kb.copy(out, target)
        click.echo(f"copied {len(copied.chunks)} chunks of {kb_path} into {out} ({copied.config.store} store)")
    except USER_ERRORS as exc:
        _fail(exc)


def _ray_encoder(address: str, workers: int | None, config: Config, out: str):
    from .embedding import shared_encoder
    from .ray_encoding import RayChunkEncoder

    dim = shared_encoder(config.model, config.device, config.max_seq_length, config.backend).dim
    return RayChunkEncoder(
        None if address == "local" else address,
        config.model,
        config.device,
        config.max_seq_length,
        config.backend,
        dim,
        Path(out).with_name(Path(out).name + ".encoding"),
        workers,
    )


READER_PRECISION_OPTION = click.option(
    "--reader-precision",
    type=click.Choice([p.value for p in ReaderPrecision]),
    default=None,
    help="Reader export: int8 (default, faster) or fp32 (a little more accurate, ~1.8x the reading time).",
)

COMPOSER_OPTION = click.option(
    "--composer",
    type=click.Choice([c.value for c in ComposerKind]),
    default=None,
    help="Answer step: the trained reader (default) or the heuristic sentence scorer.",
)


@main.command()
@click.argument("question")
@click.option("--kb", "kb_path", default=None, help="Index folder (default: the bundled news page).")
@click.option("--mode", type=click.Choice([m.value for m in RetrievalMode]), default=None)
@COMPOSER_OPTION
@READER_PRECISION_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def ask(question, kb_path, mode, composer, reader_precision, as_json):
    """Answer QUESTION with quoted, cited sentences."""
    try:
        check_question(question)
        kb = _kb(kb_path)
        kb.choose_answer_step(composer, reader_precision)
        answer = kb.answer(question, mode=mode)
    except USER_ERRORS as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(answer.text)


@main.command()
@click.argument("question")
@click.option("--kb", "kb_path", default=None, help="Index folder (default: the bundled news page).")
@click.option("-k", default=5, show_default=True, help="Number of passages.")
@click.option("--mode", type=click.Choice([m.value for m in RetrievalMode]), default=None)
@click.option("--json", "as_json", is_flag=True)
def search(question, kb_path, k, mode, as_json):
    """Show the ranked passages for QUESTION."""
    try:
        check_question(question)
        hits = _kb(kb_path).search(question, k=k, mode=mode)
    except USER_ERRORS as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return
    for rank, h in enumerate(hits, 1):
        click.echo(f"{rank}. [{h.score:.3f}] 《{h.title}》 {h.doc_id} {h.start}-{h.end}")
        click.echo(f"   {' '.join(h.text.split())[:200]}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True)
@click.option("--kb", "kb_path", default="default", show_default=True, help="Index folder to open first.")
@click.option("--share", is_flag=True, help="Ask Gradio for a public link (needs internet).")
@click.option("--auth", "auth", multiple=True, help="USER:PASSWORD that may log in (repeat for more).")
@click.option("--auth-file", type=click.Path(dir_okay=False), help="A file of USER:PASSWORD lines.")
@COMPOSER_OPTION
@READER_PRECISION_OPTION
def chat(host, port, kb_path, share, auth, auth_file, composer, reader_precision):
    """Open the chat window in the browser."""
    from rag.ui.app import launch

    try:
        config = Config().replace(composer=composer, reader_precision=reader_precision)
        launch(host=host, port=port, kb=kb_path, share=share, auth=_logins(auth, auth_file), config=config)
    except USER_ERRORS as exc:
        _fail(exc)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option(
    "--kb", "kb_path", default="default", show_default=True, help="Index folder; its siblings are served too."
)
@click.option("--workers", default=1, show_default=True, help="Processes; more than 1 serves the API only.")
@click.option("--api-key", "api_keys", multiple=True, help="A key clients send as `Authorization: Bearer KEY`.")
@click.option("--api-key-file", type=click.Path(dir_okay=False), help="A file of keys, one per line.")
@click.option("--no-auth", is_flag=True, help="Serve a non-loopback address without keys (anyone may ask and upload).")
@click.option("--no-chat-window", is_flag=True, help="Serve the API only.")
@COMPOSER_OPTION
@READER_PRECISION_OPTION
def serve(host, port, kb_path, workers, api_keys, api_key_file, no_auth, no_chat_window, composer, reader_precision):
    """Serve the HTTP API (REST under /v1, OpenAI-compatible chat completions) and the chat window.

    Keys also come from RAG_API_KEYS (comma-separated). On loopback no key is needed; on any other
    address a key is required unless --no-auth. With keys, the chat window's login takes any user
    name and a key as the password."""
    import uvicorn

    from .knowledge_bases import LOOPBACK, root_and_name

    keys = [*api_keys, *_lines(api_key_file, "--api-key-file")]
    keys += [k.strip() for k in os.environ.get("RAG_API_KEYS", "").split(",") if k.strip()]
    if host not in LOOPBACK and not keys:
        if not no_auth:
            _fail(
                ValueError(
                    f"serving on {host} needs an API key: --api-key KEY, --api-key-file or RAG_API_KEYS "
                    "(or --no-auth to serve openly)"
                )
            )
        click.echo(f"warning: serving on {host} with no API key; anyone who can reach it can ask and upload.", err=True)
    if workers < 1:
        _fail(ValueError("--workers must be 1 or more"))
    settings = {
        "api_keys": keys,
        "chat_window": not no_chat_window and workers == 1,
        "answer_step": {"composer": composer, "reader_precision": reader_precision},
    }
    if workers > 1 and not no_chat_window:
        click.echo("note: the chat window needs one process; with --workers > 1 only the API is served.", err=True)
    if kb_path != "default":
        settings |= {"root": str(root_and_name(kb_path)[0])}
        if not (Path(kb_path) / "CURRENT").exists():
            _fail(
                FileNotFoundError(
                    f"{kb_path}: no knowledge base here. Build one with `rag index SRC... --out {kb_path}`."
                )
            )
    os.environ["RAG_SERVE"] = json.dumps(settings)
    click.echo(
        f"API docs: http://{host}:{port}/docs"
        + ("" if not settings["chat_window"] else f"  chat window: http://{host}:{port}/")
    )
    uvicorn.run(
        "rag.api:app_from_environment", factory=True, host=host, port=port, workers=workers, log_level="warning"
    )


def _lines(path: str | None, option: str) -> list[str]:
    """Non-empty lines of a secrets file given with `option`."""
    if not path:
        return []
    try:
        return [line.strip() for line in open(path, encoding="utf-8") if line.strip()]
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from exc


def _logins(pairs: tuple[str, ...], path: str | None) -> list[tuple[str, str]]:
    lines = [*pairs, *_lines(path, "--auth-file")]
    logins = []
    for line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise click.BadParameter("each login is USER:PASSWORD", param_hint="--auth")
        logins.append((user, password))
    return logins


@main.command()
@click.argument("kb_path", metavar="KB")
def check(kb_path):
    """Verify every file of KB's live version against its manifest; exit 1 on damage."""
    from . import store

    try:
        problems = store.check(Path(kb_path))
    except USER_ERRORS as exc:
        problems = [exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)]
    for problem in problems:
        click.echo(f"damaged: {problem}", err=True)
    if problems:
        click.echo(f"{kb_path}: damaged; rebuild it with `rag index SRC... --out {kb_path}`.", err=True)
        sys.exit(1)
    click.echo(f"{kb_path}: every file matches its manifest.")


@main.command()
@click.option("--prune", is_flag=True, help="Delete them.")
def cache(prune):
    """List (or --prune) exports of earlier reader weights left in the model cache."""
    from .reader_export import models_root, stale_exports

    try:
        stale = stale_exports()
    except USER_ERRORS as exc:
        _fail(exc)
    sizes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in stale}
    for path in stale:
        if prune:
            shutil.rmtree(path, ignore_errors=True)
        click.echo(f"{'deleted' if prune else 'stale'}: {path.name} ({sizes[path] / 2**20:.0f} MB)")
    total = sum(sizes.values()) / 2**20
    if not stale:
        click.echo(f"{models_root()}: no stale reader exports.")
    elif not prune:
        click.echo(f"{len(stale)} stale, {total:.0f} MB; `rag cache --prune` deletes them.")
    else:
        click.echo(f"freed {total:.0f} MB.")


@main.command("eval")
@click.argument("dataset", required=False, default="qingdao")
@click.option("--kb", "kb_path", default=None, help="Use this index instead of building one for the dataset.")
@click.option(
    "--mode", type=click.Choice([m.value for m in RetrievalMode] + ["all"]), default="hybrid", show_default=True
)
@click.option(
    "--composer",
    type=click.Choice([c.value for c in ComposerKind] + ["all"]),
    default=None,
    help="Answer step to evaluate (default: the config's, the reader); `all` compares them side by side.",
)
@READER_PRECISION_OPTION
@click.option("--model", "models", multiple=True, help="Embedding model(s) to compare; repeat the option.")
@BACKEND_OPTION
@click.option(
    "--split",
    default=None,
    help="dev or test (bundled set; default dev), even or odd (every other question, e.g. CMRC dev). "
    "Held-out splits (test, odd) are reported without per-question failures.",
)
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--out", default="eval/reports", show_default=True, help="Report folder.")
@store_options
def eval_(
    dataset, kb_path, mode, composer, reader_precision, models, backend, split, limit, out, store, uri, milvus_keyword
):
    """Benchmark retrieval and answers on DATASET (qingdao, cmrc2018-dev, a SQuAD .json or a BEIR folder)."""
    from .evaluation import load_dataset, run_qa
    from .kb import open_eval_index
    from .report import write_report

    try:
        data = load_dataset(dataset)
        if split is None and any(it.split for it in data.items):
            split = "dev"  # the test split is held out: report it on purpose, once
        items = data.split(split)[:limit] if limit else data.split(split)
        modes = [m.value for m in RetrievalMode] if mode == "all" else [mode]
        composers = [c.value for c in ComposerKind] if composer == "all" else [composer or Config().composer.value]
        runs, failures, by_type = {}, {}, {}
        for model in models or [None]:
            config = Config().replace(model=model, backend=backend, store=store, uri=uri, milvus_keyword=milvus_keyword)
            if kb_path:
                kb = KnowledgeBase.open(kb_path, config if model else None)
            else:
                kb = open_eval_index(data.name, data.documents, config)
            for kind in composers:
                kb.choose_answer_step(kind, reader_precision)
                for m in modes:
                    parts = [m] + ([kind] if len(composers) > 1 else []) + ([model] if len(models) > 1 else [])
                    label = " · ".join(p for p in parts if p)
                    result = run_qa(kb, items, mode=m)
                    result["metrics"]["build_seconds"] = (
                        sum(v for k, v in (kb.build_seconds or {}).items() if k != "chunks") or None
                    )
                    runs[label] = result["metrics"]
                    by_type[label] = result["by_type"]
                    # held-out questions are reported in aggregate only, so nobody tunes on their failures
                    failures[label] = (
                        []
                        if split in HELD_OUT_SPLITS
                        else [
                            r.to_dict()
                            for r in result["records"]
                            if (r.item.answers and not r.quote_hit)
                            or (r.item.type == "unanswerable" and not r.abstained)
                        ]
                    )
    except USER_ERRORS as exc:
        _fail(exc)
    settings = {
        "dataset": dataset,
        "split": split or "all",
        "questions": len(items),
        "kb": kb_path or "built for the dataset",
        "models": list(models) or ["default"],
        "composers": composers,
        "config": kb.config.to_saved_dict(),
    }
    path = write_report(f"{data.name}-{split or 'all'}", runs, settings, failures, out, by_type)
    labels = list(runs)
    click.echo("metric".ljust(22) + "".join(label[:18].rjust(20) for label in labels))
    for metric in next(iter(runs.values())):
        values = [runs[label].get(metric) for label in labels]
        click.echo(
            metric.ljust(22) + "".join(f"{v:20.4f}" if isinstance(v, float) else f"{str(v):>20}" for v in values)
        )
    click.echo(f"report: {path}")


if __name__ == "__main__":
    main()
