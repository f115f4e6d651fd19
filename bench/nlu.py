"""How well and how fast the rules understand labelled messages, per part of the labelled set.

    python bench/nlu.py [PATH ...] [--reps N] [--misses]

Without PATH, the parts are: the shared sample (``/work/shared/data/utterances.sample.jsonl``),
``tests/data/nlu_tuning.jsonl`` (phrasings the rules were tuned on) and
``tests/data/nlu_heldout.jsonl`` (written before tuning and never used to change the rules: the
figure that says whether the rules generalise). Each file is JSON lines of
{"text", "lang", "tool", "args"}; "tool" null means the message must not be acted on or is
refused. Prints tool and tool+args accuracy and language detection per part and language, the
misses of the parts other than the held-out one (``--misses`` shows those too), and the time per
call (mean, median, p99) over N passes of everything.
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

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from bot.nlu import understand  # noqa: E402

_SAMPLE = (Path("/work/shared/data/utterances.sample.jsonl"), _ROOT.parent / "shared" / "data" / "utterances.sample.jsonl")
PARTS = {"sample": _SAMPLE, "tuning": (_ROOT / "tests" / "data" / "nlu_tuning.jsonl",),
         "held-out": (_ROOT / "tests" / "data" / "nlu_heldout.jsonl",)}


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


def score(part: str, cases: list[Case], *, show_misses: bool) -> float:
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
    for key in ("all", "en", "pt"):
        n, tool, exact, lang = totals[key]
        if n:
            print(f"{part:<9} {key:<4} {n:>4} {tool / n:>7.1%} {exact / n:>10.1%} {lang / n:>7.1%}")
    if show_misses:
        for case, intent in misses:
            print(f"    miss {case.text!r}\n      want {case.tool} {case.args} ({case.lang})"
                  f"\n      got  {intent.tool} {intent.args} ({intent.lang})")
    elif misses:
        print(f"    ({len(misses)} misses not shown: the held-out part is not for tuning)")
    n, _, exact, _ = totals["all"]
    return exact / n if n else 0.0


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
          f"p99 {p99 / 1e3:.1f} us (target: 500 us)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--misses", action="store_true", help="also list the held-out misses")
    args = parser.parse_args(argv)
    parts = {p.stem: (p,) for p in args.paths} if args.paths else PARTS
    everything: list[Case] = []
    print(f"{'part':<9} {'set':<4} {'n':>4} {'tool':>7} {'tool+args':>10} {'lang':>7}")
    for part, candidates in parts.items():
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            print(f"{part:<9} (no file: {candidates[0]})")
            continue
        cases = load(path)
        everything += cases
        score(part, cases, show_misses=args.misses or part != "held-out")
    if not everything:
        return 2
    timing(everything, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
