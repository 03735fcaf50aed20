"""Concurrent users against the chat app's /answer endpoint: errors, p50 and p95.

    .venv/bin/python benchmarks/ui_load.py --clients 16 --questions 10

Starts `rag chat` on a free loopback port in a subprocess, then each client (a thread with
its own gradio_client) asks its questions one after another; all clients start together.
"""

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from chat_server import chat_server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    from gradio_client import Client

    from rag.evaluation import percentile

    questions = [
        json.loads(line)["question"] for line in (ROOT / "eval" / "qingdao_qa.jsonl").read_text("utf-8").splitlines()
    ]
    with chat_server() as (_, url):
        Client(url, verbose=False).predict(questions[0], "default", [], api_name="/answer")  # warm
        times, errors = [], []
        barrier = threading.Barrier(args.clients)

        def user(i):
            client = Client(url, verbose=False)
            barrier.wait()
            for j in range(args.questions):
                q = questions[(i * args.questions + j) % len(questions)]
                t = time.perf_counter()
                try:
                    r = client.predict(q, "default", [], api_name="/answer")
                    assert "text" in r
                    times.append(time.perf_counter() - t)
                except Exception as exc:  # any failure counts, whatever its kind
                    errors.append(repr(exc))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        p95 = percentile(times, 0.95)
        print(
            f"{args.clients} clients x {args.questions} questions: {len(times)} answers, {len(errors)} errors, "
            f"p50 {1000 * statistics.median(times):.0f} ms, p95 {1000 * p95:.0f} ms, "
            f"{len(times) / wall:.1f} answers/s over {wall:.1f} s"
        )
        for e in errors[:5]:
            print("error:", e)


if __name__ == "__main__":
    main()
