"""Issue 10's failures, reproduced and proved fixed: concurrent writers, re-indexing under readers,
damaged indexes, limits. Each builds its knowledge bases in temporary folders."""

import multiprocessing
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag import Document, KnowledgeBase, store
from rag.store import IndexDamagedError, WriterBusyError

ROUNDS = 20
FACT = "崂山茶园{n}号基地2024年产茶{n}00吨，由青岛崂山区农业农村局登记。"


def _writer(path: str, name: str, rounds: int) -> None:
    kb = KnowledgeBase.open(path)
    for r in range(rounds):
        kb.update(add=[Document(f"{name}-{r}", FACT.format(n=r), f"{name} 第{r}篇")])


def test_two_writing_processes_lose_no_update(news_kb, tmp_path):
    root = tmp_path / "kb"
    KnowledgeBase.open(news_kb.path).save(root)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(str(root), name, ROUNDS)) for name in ("a", "b")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=600)
        assert w.exitcode == 0
    kb = KnowledgeBase.open(root)
    added = {d for d in kb.documents if d[:2] in ("a-", "b-")}
    assert added == {f"{n}-{r}" for n in "ab" for r in range(ROUNDS)}  # 0 lost updates
    assert not store.check(root) and len(list(root.glob("v*"))) == 1 and not list(root.glob(".v*"))


def test_a_busy_writer_is_a_clear_error(tmp_path):
    root = tmp_path / "kb"
    held, release = threading.Event(), threading.Event()

    def hold():
        with store.write_lock(root):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    code = "from rag import store; from pathlib import Path; import sys\n"
    code += f"with store.write_lock(Path({str(root)!r}), timeout=0.5): pass"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    release.set()
    t.join()
    assert out.returncode != 0 and "another process is writing" in out.stderr
    with store.write_lock(root, timeout=1):  # free again once the holder is done
        pass
    assert issubclass(WriterBusyError, RuntimeError)


def test_reindexing_a_file_never_hides_it_from_readers(news_kb, tmp_path):
    kb = KnowledgeBase.open(news_kb.path)
    kb.path = None  # in memory: the swap is what is tested here
    doc = Document("tea.txt", FACT.format(n=7), "崂山茶")
    kb.update(add=[doc])
    question = "崂山茶园7号基地2024年产茶多少？"
    assert kb.answer(question).short == "700吨"
    misses, errors, stop = [], [], threading.Event()

    def ask():
        while not stop.is_set():
            try:
                a = kb.answer(question)
                if a.short != "700吨":
                    misses.append(a.short)
            except Exception as exc:
                errors.append(repr(exc))

    readers = [threading.Thread(target=ask) for _ in range(16)]
    for r in readers:
        r.start()
    for _ in range(5):
        kb.update(add=[doc])  # the same file uploaded again
    stop.set()
    for r in readers:
        r.join()
    assert not errors and not misses


def _damage(root: Path, how: str) -> None:
    folder = root / store.current_version(root)
    if how == "truncated faiss":
        data = (folder / "dense.faiss").read_bytes()
        (folder / "dense.faiss").write_bytes(data[: len(data) // 2])
    elif how == "deleted faiss":
        (folder / "dense.faiss").unlink()
    elif how == "garbage faiss":
        (folder / "dense.faiss").write_bytes(b"not an index" * 100)
    elif how == "manifest of the wrong shape":
        (folder / "manifest.json").write_text("[1, 2, 3]", "utf-8")
    elif how == "truncated tokens":
        lines = (folder / "tokens.jsonl").read_text("utf-8").splitlines()
        (folder / "tokens.jsonl").write_text("\n".join(lines[:20]) + "\n", "utf-8")
    elif how == "pointer out of the folder":
        (root / "CURRENT").write_text("../elsewhere", "utf-8")
    elif how == "deleted bm25":
        shutil.rmtree(folder / "bm25")


@pytest.mark.parametrize(
    "how",
    [
        "truncated faiss",
        "deleted faiss",
        "garbage faiss",
        "manifest of the wrong shape",
        "truncated tokens",
        "pointer out of the folder",
        "deleted bm25",
    ],
)
def test_a_damaged_index_is_named_not_a_traceback(news_kb, tmp_path, how):
    root = tmp_path / "kb"
    KnowledgeBase.open(news_kb.path).save(root)
    _damage(root, how)
    with pytest.raises(IndexDamagedError, match="rebuild"):
        KnowledgeBase.open(root)
    out = subprocess.run([sys.executable, "-m", "rag.cli", "check", str(root)], capture_output=True, text=True)
    assert out.returncode == 1 and "damaged" in out.stderr and "Traceback" not in out.stderr


def test_check_passes_a_whole_index(news_kb, tmp_path):
    root = tmp_path / "kb"
    KnowledgeBase.open(news_kb.path).save(root)
    out = subprocess.run([sys.executable, "-m", "rag.cli", "check", str(root)], capture_output=True, text=True)
    assert out.returncode == 0 and "every file matches" in out.stdout


def test_a_read_only_folder_is_a_clear_error(news_kb, tmp_path):
    root = tmp_path / "ro"
    KnowledgeBase.open(news_kb.path).save(root)
    root.chmod(0o555)
    try:
        if (root / "probe").exists() or _writable(root):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(store.StoreWriteError, match="cannot write|could not save"):
            KnowledgeBase.open(root).update(add=[Document("x", FACT.format(n=1))])
    finally:
        root.chmod(0o755)


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("x")
        (folder / "probe").unlink()
        return True
    except OSError:
        return False


def test_limits_are_clear_errors(news_kb):
    with pytest.raises(ValueError, match="at most 2000"):
        news_kb.answer("青岛" * 1500)
    for k in (-5, 0, 1000):
        with pytest.raises(ValueError, match="k must be"):
            news_kb.search("青岛", k=k)


def test_long_text_without_punctuation_is_indexed(tmp_path):
    kb = KnowledgeBase()
    kb.update(add=[Document("long", "青岛港" * 200_000 + "，2024年货物吞吐量达到7.1亿吨。")])
    assert len(kb.chunks) > 1000


def test_knowledge_bases_share_one_encoder_tokenizer_and_reader(news_kb, tmp_path):
    other = KnowledgeBase()
    assert other.encoder is news_kb.encoder and other.tokenizer is news_kb.tokenizer
    assert other.composer.reader is news_kb.composer.reader


def test_a_read_only_disk_is_one_clear_error_and_the_old_version_answers(news_kb, tmp_path, monkeypatch):
    import errno

    root = tmp_path / "kb"
    kb = KnowledgeBase.open(news_kb.path)
    kb.save(root)

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store, "_write_jsonl", read_only)
    with pytest.raises(store.StoreWriteError, match="Read-only file system.*previous version is unchanged"):
        kb.update(add=[Document("x", FACT.format(n=1))])
    monkeypatch.undo()
    assert not list(root.glob(".v*")) and not store.check(root)
    assert KnowledgeBase.open(root).answer("2024年青岛市进出口达多少亿元？").short == "9076.7亿元"
