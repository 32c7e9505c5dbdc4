"""The PNG: latency percentiles and throughput against concurrency (saga at 0 ms and at a real gateway latency,
and the PostgreSQL limit)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Series = dict[int, dict[str, float]]  # concurrency -> {"p50", "p95", "p99", "per_s"}


def plot(path: Path, series: dict[str, Series], title: str, no_throughput: tuple[str, ...] = ()) -> None:
    """`no_throughput`: series whose throughput repeats another's (a latency-only view of the same run)."""
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(13, 6))
    styles = {"p50": "-", "p95": "--", "p99": ":"}
    for (label, data), colour in zip(series.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red"),
                                     strict=False):
        levels = sorted(data)
        for pct, style in styles.items():
            lat.plot(levels, [data[c][pct] for c in levels], style, marker="o", color=colour, label=f"{label} {pct}")
        if label not in no_throughput:
            thr.plot(levels, [data[c]["per_s"] for c in levels], marker="o", color=colour, label=label)
            for c in levels:
                thr.annotate(f"{data[c]['per_s']:.1f}", (c, data[c]["per_s"]), textcoords="offset points",
                             xytext=(0, 6), ha="center", fontsize=7)
    for ax in (lat, thr):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({c for data in series.values() for c in data}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrent checkouts")
        ax.grid(True, which="both", alpha=0.3)
    lat.set_yscale("log")
    lat.set_ylabel("latency per payment (ms, log)")
    lat.set_title("latency percentiles")
    lat.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    thr.set_ylabel("payments / s")
    thr.set_yscale("log")
    thr.set_title("throughput")
    thr.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    for ax in (lat, thr):  # after set_yscale, which installs its own formatters
        ax.get_yaxis().set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.get_yaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
