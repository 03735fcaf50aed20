"""Eval reports: a side-by-side Markdown table, the same as JSON, and a PNG chart."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from . import cpu, onnx_export

HEADLINE = [
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr@10",
    "ndcg@10",
    "quote@1",
    "answer@1",
    "short_em",
    "short_f1",
    "abstention_precision",
    "abstention_recall",
    "false_abstention",
    "low_confidence_wrong",
    "low_confidence_right",
    "verbatim",
    "latency_p50_ms",
    "latency_p95_ms",
    "questions_per_s",
    "build_seconds",
]
CHART = ["hit@1", "hit@5", "mrr@10", "quote@1", "short_f1", "abstention_recall"]


def machine() -> str:
    import os

    return (
        f"{platform.machine()} {os.cpu_count()} cores, {cpu.describe()}, "
        f"per-channel int8 weights {7 if onnx_export.seven_bit(per_channel=True) else 8}-bit, "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.3f}"
    return "–" if value is None else str(value)


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """Markdown table lines; floats to 3 decimals (1 from 10 up), None as –."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def figures_table(columns: dict[str, dict]) -> list[str]:
    """One row per figure, one column per measured setting (the benchmarks' layout)."""
    keys = list(dict.fromkeys(k for figures in columns.values() for k in figures))
    return markdown_table(["figure", *columns], [[k, *(f.get(k) for f in columns.values())] for k in keys])


def benchmark_header(title: str, note: str = "") -> list[str]:
    return [f"# {title} ({time.strftime('%Y-%m-%d %H:%M')})", "", f"machine: {machine()}" + note, ""]


def _cell(row: dict | None) -> str:
    if not row:
        return "–"
    if "abstained" in row:
        return _fmt(row["abstained"])
    return f"{_fmt(row['quote@1'])} / {_fmt(row['short_f1'])}"


def write_report(
    name: str,
    runs: dict[str, dict],
    settings: dict,
    failures: dict[str, list[dict]],
    out_dir: str | Path,
    by_type: dict[str, dict] | None = None,
) -> Path:
    """`runs` maps a column label ("hybrid", "dense · model") to its metrics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    metrics = [m for m in HEADLINE if any(m in r for r in runs.values())]
    lines = [f"# Evaluation: {name}", "", f"- when: {time.strftime('%Y-%m-%d %H:%M')}", f"- machine: {machine()}"]
    lines += [f"- {k}: `{v}`" for k, v in settings.items()]
    lines += ["", *markdown_table(["metric", *runs], [[m, *(r.get(m) for r in runs.values())] for m in metrics])]
    if by_type and any(by_type.values()):
        kinds = list(dict.fromkeys(k for table in by_type.values() for k in table))
        lines += [
            "",
            "## By question type",
            "",
            "quote@1 / short-answer F1 per type; for 不可回答 the share abstained.",
            "",
        ]
        counts = {kind: next(t[kind]["n"] for t in by_type.values() if kind in t) for kind in kinds}
        type_rows = [[kind, counts[kind], *(_cell(t.get(kind)) for t in by_type.values())] for kind in kinds]
        lines += markdown_table(["type", "n", *by_type], type_rows)
    for label, rows in failures.items():
        if not rows:
            continue
        lines += ["", f"## Failed questions ({label}, {len(rows)})", ""]
        lines += markdown_table(
            ["id", "type", "question", "gold", "returned"],
            [
                [
                    row["id"],
                    row["type"],
                    row["question"],
                    " / ".join(row["answers"][:2]) or "（无答案）",
                    "（拒答）" if row["abstained"] else (row["short"] or row["quote"][:60].replace("\n", " ")),
                ]
                for row in rows
            ],
        )
    chart = _chart(runs, stem.with_suffix(".png"))
    if chart:
        lines += ["", f"![mode comparison]({chart.name})"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "name": name,
                "settings": settings,
                "machine": machine(),
                "runs": runs,
                "by_type": by_type or {},
                "failures": failures,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return stem.with_suffix(".md")


def _chart(runs: dict[str, dict], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = [m for m in CHART if any(m in r for r in runs.values())]
    if not metrics:
        return None
    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics) + 2, 4))
    for i, (label, r) in enumerate(runs.items()):
        ax.bar(x + i * width, [r.get(m, 0) or 0 for m in metrics], width, label=label)
    ax.set_xticks(x + width * (len(runs) - 1) / 2, metrics)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(path.stem)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
