"""How well and how fast the rules understand a labelled set of messages.

    python bench/nlu.py [PATH] [--reps N]

PATH is a JSON-lines file of {"text", "lang", "tool", "args"} (default: the shared sample).
Prints tool accuracy and tool+args accuracy overall and per language, language detection
accuracy, the misses, and the time per call (mean and p99) over N passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bot.nlu import understand

_ROOT = Path(__file__).resolve().parents[1]
_DEFAULTS = (Path("/work/shared/data/utterances.sample.jsonl"),
             _ROOT.parent / "shared" / "data" / "utterances.sample.jsonl")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    text: str
    lang: str
    tool: str | None
    args: dict[str, str]


def load(path: Path) -> list[Case]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [Case(text=r["text"], lang=r["lang"], tool=r["tool"], args=r.get("args", {})) for r in rows]


def score(cases: list[Case]) -> None:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # n, tool, tool+args, lang
    misses = []
    for case in cases:
        intent = understand(case.text)
        tool_ok = intent.tool == case.tool
        exact = tool_ok and intent.args == case.args
        for key in ("all", case.lang):
            row = totals[key]
            row[0] += 1
            row[1] += tool_ok
            row[2] += exact
            row[3] += intent.lang == case.lang
        if not exact or intent.lang != case.lang:
            misses.append((case, intent))
    print(f"{'set':<5} {'n':>4} {'tool':>7} {'tool+args':>10} {'lang':>7}")
    for key in ("all", "en", "pt"):
        n, tool, exact, lang = totals[key]
        if n:
            print(f"{key:<5} {n:>4} {tool / n:>7.1%} {exact / n:>10.1%} {lang / n:>7.1%}")
    print(f"\nmisses: {len(misses)}")
    for case, intent in misses:
        print(f"  {case.text!r}\n    want {case.tool} {case.args} ({case.lang})"
              f"\n    got  {intent.tool} {intent.args} ({intent.lang})")


def timing(cases: list[Case], reps: int) -> None:
    texts = [case.text for case in cases]
    for text in texts:  # warm up caches of compiled patterns
        understand(text)
    samples = []
    for _ in range(reps):
        for text in texts:
            start = time.perf_counter_ns()
            understand(text)
            samples.append(time.perf_counter_ns() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"\ntime per utterance over {len(samples)} calls ({reps} passes): "
          f"mean {statistics.fmean(samples) / 1e3:.1f} us, median {samples[len(samples) // 2] / 1e3:.1f} us, "
          f"p99 {p99 / 1e3:.1f} us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path)
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args(argv)
    path = args.path or next((p for p in _DEFAULTS if p.exists()), _DEFAULTS[-1])
    if not path.exists():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    cases = load(path)
    print(f"{path}: {len(cases)} utterances\n")
    score(cases)
    timing(cases, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
