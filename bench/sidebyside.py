"""What bench/slack.py and bench/teams.py share: the goals, the figures of one run, the bot
process's CPU and RSS from /proc, and the side-by-side table with each pair's ratio and spread."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True, kw_only=True)
class Goal:
    name: str
    unit: str
    better: str  # "lower" or "higher"
    ratio_goal: float | None = None  # Resync / bare
    absolute_goal: float | None = None  # Resync's own figure (RSS)


@dataclass(slots=True)
class Run:
    figures: dict[str, float] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # counts printed under the table


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def table(goals: Sequence[Goal], runs: Mapping[str, list[Run]], labels: Mapping[str, str]) -> bool:
    """Every figure for Resync and each bare kind measured (``labels`` orders them, ``resync``
    first), Resync's pairwise ratio to each, median (min-max); True when every goal is met against
    every bare kind."""
    def spread(values: list[float], fmt: Callable[[float], str]) -> str:
        return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})" if values else "-"

    number = lambda v: f"{v:,.1f}" if v < 100 else f"{v:,.0f}"  # noqa: E731
    bares = [k for k in labels if k != "resync" and runs.get(k)]
    head = f"\n{'figure':24} {labels['resync'] + ' (min-max)':>24}"
    for kind in bares:
        head += f" {labels[kind] + ' (min-max)':>24} {'ratio (min-max)':>20}"
    print(head + "  goal")
    met = True
    for goal in goals:
        ours = [r.figures[goal.name] for r in runs.get("resync", [])]
        line = f"{goal.name + ' (' + goal.unit + ')':24} {spread(ours, number):>24}"
        verdicts = []
        for kind in bares:
            theirs = [r.figures[goal.name] for r in runs[kind]]
            ratios = [a / b for a, b in zip(ours, theirs) if b]
            line += f" {spread(theirs, number):>24} {spread(ratios, lambda v: f'{v:.2f}'):>20}"
            if goal.ratio_goal is not None and ratios:
                median = statistics.median(ratios)
                ok = median <= goal.ratio_goal if goal.better == "lower" else median >= goal.ratio_goal
                verdicts.append("ok" if ok else "MISSED")
                met &= ok
        verdict = ""
        if verdicts:
            verdict = f"{'≤' if goal.better == 'lower' else '≥'} {goal.ratio_goal:g}× {' / '.join(verdicts)}"
        if goal.absolute_goal is not None and ours:
            ok = max(ours) <= goal.absolute_goal
            verdict = f"≤ {goal.absolute_goal:g} {goal.unit} {'ok' if ok else 'MISSED'}"
            met &= ok
        print(f"{line}  {verdict}")
    for kind, kind_runs in runs.items():
        if kind_runs and kind_runs[0].notes:
            notes = {k: statistics.median([r.notes[k] for r in kind_runs]) for k in kind_runs[0].notes}
            print(f"  {labels[kind]}, per repetition's status and help phases (median): "
                  + ", ".join(f"{k} {v:g}" for k, v in notes.items()))
    return met
