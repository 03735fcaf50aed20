"""Concurrent clients against `rag serve`: /v1/answer, /v1/chat/completions and the Gradio path.

    .venv/bin/python benchmarks/api_load.py --seconds 30

Measured in one run:
1. the answer step alone, in this process: one answer's p50 (one question at a time), and
   answers/s with one and with two threads asking at once (the better is "what the answer step
   alone can do on 2 cores");
2. `rag serve --workers 1` (chat window mounted) and `--workers 2` (API only): for 16 and 64
   clients, each a thread asking the bundled questions one after another for `--seconds` over
   /v1/answer, /v1/chat/completions and (1 worker) Gradio's /answer through gradio_client.
Clients wait for each reply before asking again (a closed loop), so by Little's law p50 is about
clients / throughput: on 2 cores it cannot drop below clients × one answer's time / 2.
Writes `eval/reports/api-load-<time>.md`.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0, help="per setting")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "qingdao_qa.jsonl").open(encoding="utf-8")]
    env = {"RAG_INDEX_DIR": str(Path(tempfile.mkdtemp(prefix="api-load-")) / "index")}
    alone = answer_step_alone(questions, args.seconds, env)
    columns: dict[str, dict] = {"answer step alone": alone}
    for workers in (1, 2):
        with chat_server(env, ("serve", "--workers", str(workers))) as (server, url):
            warm(url, questions, workers)
            paths = ["answer", "chat"] + (["gradio"] if workers == 1 else [])
            for clients in args.clients:
                for path in paths:
                    figures = run(url, path, questions, clients, args.seconds)
                    figures["p50_vs_one_answer"] = figures["p50_ms"] / alone["one_answer_p50_ms"]
                    figures["throughput_vs_alone"] = figures["answers_per_s"] / alone["answers_per_s"]
                    if workers == 1:
                        figures["server_rss_mb"] = rss_mb(server.pid)
                    columns[f"{path} · {workers}w · {clients}c"] = figures
                    print(f"{path} {workers}w {clients}c: {figures}", flush=True)
    lines = benchmark_header("HTTP API under load", f"; `python benchmarks/api_load.py --seconds {args.seconds:g}`")
    lines += figures_table(columns)
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "eval" / "reports" / f"api-load-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.write_text(text, encoding="utf-8")
    print(f"report: {out}")


def answer_step_alone(questions: list[str], seconds: float, env: dict) -> dict:
    """One answer's time and answers/s of `KnowledgeBase.answer` in this process, no HTTP."""
    import os

    os.environ.update(env)
    import rag

    kb = rag.default_kb()
    for q in questions[:5]:
        kb.answer(q)
    one = []
    for q in questions:
        t = time.perf_counter()
        kb.answer(q)
        one.append(time.perf_counter() - t)
    rates = {}
    for threads in (1, 2):
        done = [0] * threads
        stop = threading.Event()

        def ask(i: int, stop=stop, done=done, threads=threads) -> None:
            n = i
            while not stop.is_set():
                kb.answer(questions[n % len(questions)])
                done[i] += 1
                n += threads

        pool = [threading.Thread(target=ask, args=(i,)) for i in range(threads)]
        t0 = time.perf_counter()
        for th in pool:
            th.start()
        time.sleep(seconds)
        stop.set()
        for th in pool:
            th.join()
        rates[threads] = sum(done) / (time.perf_counter() - t0)
    return {
        "one_answer_p50_ms": 1000 * statistics.median(one),
        "answers_per_s_1_thread": rates[1],
        "answers_per_s_2_threads": rates[2],
        "answers_per_s": max(rates.values()),
    }


def warm(url: str, questions: list[str], workers: int) -> None:
    """Wait until every worker has loaded its models and answered."""
    import httpx

    seen: set[int] = set()
    deadline = time.time() + 300
    while len(seen) < workers and time.time() < deadline:
        try:
            seen.add(httpx.get(f"{url}v1/health", timeout=10).json()["worker"])
        except httpx.HTTPError:
            time.sleep(0.5)
    for q in questions[: 10 * workers]:
        httpx.post(f"{url}v1/answer", json={"question": q}, timeout=120)


def run(url: str, path: str, questions: list[str], clients: int, seconds: float) -> dict:
    """`clients` threads asking over `path` for `seconds`: answers/s, p50/p95, errors."""
    import httpx
    from gradio_client import Client

    times: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    ready = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        if path == "gradio":
            gradio = Client(url, verbose=False)
        http = httpx.Client(base_url=url, timeout=300)
        ready.wait()
        n = i
        while not stop.is_set():
            q = questions[n % len(questions)]
            n += clients
            t = time.perf_counter()
            try:
                if path == "gradio":
                    gradio.predict(q, "default", [], api_name="/answer")
                elif path == "answer":
                    http.post("v1/answer", json={"question": q}).raise_for_status()
                else:
                    body = {"model": "default", "messages": [{"role": "user", "content": q}]}
                    http.post("v1/chat/completions", json=body).raise_for_status()
                times.append(time.perf_counter() - t)
            except Exception as exc:
                errors.append(repr(exc)[:200])
        http.close()

    pool = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in pool:
        th.start()
    ready.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for th in pool:
        th.join()
    wall = time.perf_counter() - t0
    return {
        "answers": len(times),
        "answers_per_s": len(times) / wall,
        "p50_ms": 1000 * statistics.median(times) if times else float("nan"),
        "p95_ms": 1000 * percentile(times, 0.95),
        "errors": len(errors),
    }


if __name__ == "__main__":
    main()
