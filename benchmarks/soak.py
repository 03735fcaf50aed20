"""Soak: many clients ask while uploads re-index, a writer is killed and corrupt files arrive.

    .venv/bin/python benchmarks/soak.py --clients 64 --minutes 10

Starts `rag chat` (knowledge bases in a temp folder) and measures, in one run:
1. server memory with the default knowledge base open, then after 20 more were uploaded and asked;
2. the soak: `--clients` threads each ask the bundled questions about the default page, one after
   another, for `--minutes`; every answer is compared with the one the same question got when asked
   alone before the soak (a different short answer, or abstention, counts as wrong). Meanwhile a
   writer re-uploads a file into knowledge base `soak` and asks about it, uploads a corrupt file
   (which must be named, leaving the rest), and every few cycles starts a `rag index --add`
   process on `soak` and kills it with SIGKILL mid-write; the knowledge base must still pass
   `rag check` and answer.
Writes `eval/reports/soak-<time>.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from chat_server import chat_server, rss_mb

from rag.evaluation import percentile
from rag.report import benchmark_header, figures_table

SOAK_FACT = "崂山茶园第{n}号基地2024年产茶{n}00吨。"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kbs", type=int, default=20, help="knowledge bases uploaded for the memory figure")
    parser.add_argument(
        "--no-writer", action="store_true", help="readers only: tells the readers' memory from the re-indexes'"
    )
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "qingdao_qa.jsonl").open(encoding="utf-8")]
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    env = {"RAG_INDEX_DIR": str(work / "index")}
    figures: dict[str, float | int | str] = {"clients": args.clients, "minutes": args.minutes}
    with chat_server(env) as (server, url):
        admin = Client(url, verbose=False)
        expected = {q: _key(admin.predict(q, "default", [], api_name="/answer")) for q in questions}
        figures["rss_1_kb_mb"] = rss_mb(server.pid)
        for i in range(args.kbs):
            doc = work / f"kb{i}.txt"
            doc.write_text(f"第{i}号知识库\n\n" + SOAK_FACT.format(n=i + 1), encoding="utf-8")
            admin.predict([handle_file(str(doc))], f"kb{i}", api_name="/upload")
            admin.predict(f"崂山茶园第{i + 1}号基地2024年产茶多少？", f"kb{i}", [], api_name="/answer")
        figures[f"rss_{args.kbs + 1}_kbs_mb"] = rss_mb(server.pid)

        stop = threading.Event()
        times: list[float] = []
        errors: list[str] = []
        wrong: list[str] = []
        writer_log = {"reuploads": 0, "corrupt_named": 0, "killed_writers": 0, "check_failures": 0, "soak_wrong": 0}

        def ask(i: int) -> None:
            client = Client(url, verbose=False)
            rng = random.Random(i)
            while not stop.is_set():
                q = rng.choice(questions)
                t = time.perf_counter()
                try:
                    got = _key(client.predict(q, "default", [], api_name="/answer"))
                    times.append(time.perf_counter() - t)
                    if got != expected[q]:
                        wrong.append(f"{q}: {got} != {expected[q]}")
                except Exception as exc:
                    errors.append(repr(exc)[:200])

        def write() -> None:
            client = Client(url, verbose=False)
            good, bad = work / "soak.txt", work / "broken.txt"
            bad.write_bytes(b"\x89PNG\x00\x00" * 200)
            cycle = 0
            while not stop.is_set():
                cycle += 1
                good.write_text("茶园\n\n" + SOAK_FACT.format(n=cycle % 9 + 1), encoding="utf-8")
                try:
                    _, status = client.predict(
                        [handle_file(str(good)), handle_file(str(bad))], "soak", api_name="/upload"
                    )
                    writer_log["reuploads"] += 1
                    writer_log["corrupt_named"] += "broken.txt" in status
                    r = client.predict(
                        f"崂山茶园第{cycle % 9 + 1}号基地2024年产茶多少？", "soak", [], api_name="/answer"
                    )
                    writer_log["soak_wrong"] += r["short"] != f"{cycle % 9 + 1}00吨"
                except Exception as exc:
                    errors.append("writer: " + repr(exc)[:200])
                if cycle % 3 == 0:  # a second writer, killed while it holds the lock and writes
                    extra = work / f"extra{cycle}.txt"
                    extra.write_text("额外\n\n" + SOAK_FACT.format(n=100 + cycle) * 50, encoding="utf-8")
                    proc = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "rag.cli",
                            "index",
                            str(extra),
                            "--out",
                            env["RAG_INDEX_DIR"] + "/soak",
                            "--add",
                        ],
                        env={**os.environ, **env},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(random.uniform(2.0, 6.0))
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    writer_log["killed_writers"] += 1
                    check = subprocess.run(
                        [sys.executable, "-m", "rag.cli", "check", env["RAG_INDEX_DIR"] + "/soak"],
                        env={**os.environ, **env},
                        capture_output=True,
                        text=True,
                    )
                    writer_log["check_failures"] += check.returncode != 0

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(args.clients)]
        if not args.no_writer:
            threads.append(threading.Thread(target=write))
        rss_start = rss_mb(server.pid)
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        timeline = []  # (minute, MB): a plateau is warm-up, a steady climb is a leak
        while (elapsed := time.perf_counter() - t0) < args.minutes * 60:
            time.sleep(min(30.0, args.minutes * 60 - elapsed))
            timeline.append((round((time.perf_counter() - t0) / 60, 1), round(rss_mb(server.pid))))
        stop.set()
        for th in threads:
            th.join(timeout=300)
        wall = time.perf_counter() - t0
        rss_end = rss_mb(server.pid)
    figures.update(
        {
            "answers": len(times),
            "answers_per_s": len(times) / wall,
            "errors": len(errors),
            "wrong_answers": len(wrong),
            "p50_ms": 1000 * statistics.median(times) if times else float("nan"),
            "p95_ms": 1000 * percentile(times, 0.95),
            "rss_soak_start_mb": rss_start,
            "rss_soak_end_mb": rss_end,
            "rss_growth_pct": 100 * (rss_end - rss_start) / rss_start,
            **({} if args.no_writer else writer_log),
        }
    )
    lines = benchmark_header(
        "Soak",
        f"; `python benchmarks/soak.py --clients {args.clients} --minutes {args.minutes}"
        + (" --no-writer`" if args.no_writer else "`"),
    )
    lines += figures_table({"soak": figures})
    lines += ["", "RSS during the soak (minute: MB): " + ", ".join(f"{m}: {mb}" for m, mb in timeline)]
    lines += ["", *[f"- error: {e}" for e in errors[:10]], *[f"- wrong: {w}" for w in wrong[:10]]]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "eval" / "reports" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.write_text(text, encoding="utf-8")
    print(f"report: {out}")


def _key(answer: dict) -> str:
    """What must not change under load: the short answer, or that it abstained."""
    return "（拒答）" if answer["abstained"] else str(answer["short"])


if __name__ == "__main__":
    main()
