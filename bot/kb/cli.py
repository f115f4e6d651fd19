"""``resync kb ingest|search|stats|remove``: the knowledge base from a terminal.

``add_parser`` is the one hook in ``bot/cli.py``. Each command opens the knowledge base, does its
work and closes it (the embedded store is unlocked again at once). While a bot holds the embedded
folder, the command ends with one line saying what to do (``KbLocked``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bot.config import load_kb_settings


def add_parser(sub: Any) -> None:
    kb = sub.add_parser("kb", help="the runbook knowledge base: ingest, search, stats, remove")
    kb_sub = kb.add_subparsers(metavar="WHAT")
    ingest = kb_sub.add_parser("ingest", help="ingest Markdown, text and HTML files (folders recursively)")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.set_defaults(run=_ingest)
    search = kb_sub.add_parser("search", help="the best runbook passages for a question")
    search.add_argument("text", nargs="+", metavar="TEXT")
    search.add_argument("-k", type=int, default=5, help="how many hits (default 5)")
    search.add_argument("--json", action="store_true", help='print {"hits": [{"source", "heading", "score", "text"}]}')
    search.add_argument("--mode", choices=["hybrid", "dense", "sparse"], default="hybrid", help=argparse.SUPPRESS)
    search.set_defaults(run=_search)
    stats = kb_sub.add_parser("stats", help="files, chunks, model, store and last ingest")
    stats.set_defaults(run=_stats)
    remove = kb_sub.add_parser("remove", help="remove an ingested file, or every file under a folder")
    remove.add_argument("path", metavar="PATH")
    remove.set_defaults(run=_remove)
    kb.set_defaults(run=lambda args: kb.print_help() or 2)


def _open():  # type: ignore[no-untyped-def]
    from bot.kb.index import RunbookIndex

    return RunbookIndex(load_kb_settings())


def _ingest(args: argparse.Namespace) -> int:
    from bot.kb.ingest import ingest, terminal_progress

    index = _open()
    try:
        report = ingest(index, args.paths, progress=terminal_progress())
    finally:
        index.close()
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(report.summary())
    return 1 if report.skipped else 0


def _search(args: argparse.Namespace) -> int:
    if args.k < 1:
        print("resync: -k must be at least 1", file=sys.stderr)
        return 2
    index = _open()
    try:
        hits = index.search(" ".join(args.text), k=args.k, mode=args.mode)
    finally:
        index.close()
    if args.json:
        print(json.dumps({"hits": [{"source": h.source, "heading": h.heading, "score": round(h.score, 6), "text": h.text}
                                   for h in hits]}, ensure_ascii=False))
        if not hits:  # stdout stays the exact JSON; the person reading gets the reason
            print("resync: no hits: nothing is ingested yet? see `resync kb stats`, then `resync kb ingest PATH`",
                  file=sys.stderr)
        return 0
    if not hits:
        print("no runbook passage found (is anything ingested? see `resync kb stats`)")
        return 1
    for n, hit in enumerate(hits, start=1):
        print(f"{n}. {hit.source} — {hit.heading or hit.title}  (score {hit.score:.4f})")
        print("   " + hit.text.replace("\n", "\n   "))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from bot.kb import model

    index = _open()
    try:
        files = index.files()
        chunks = index.count()
    finally:
        index.close()
    last = max((f.ingested_at for f in files.values()), default=None)
    print(f"files:       {len(files)}")
    print(f"chunks:      {chunks}")
    print(f"model:       {model.DENSE_MODEL} (dense, {model.DENSE_DIM}) + {model.SPARSE_MODEL} (sparse), RRF fusion")
    print(f"store:       {index.where} ({'Qdrant server' if index.settings.qdrant_url else 'embedded Qdrant'})")
    print("last ingest: " + (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last)) if last else "never"))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from bot.kb.ingest import remove

    index = _open()
    try:
        gone = remove(index, args.path)
    finally:
        index.close()
    if not gone:
        print(f"nothing ingested matches {args.path} (see `resync kb stats`)", file=sys.stderr)
        return 1
    for source in gone:
        print(f"removed {source}")
    return 0


def ingest_samples(settings: Any) -> str:
    """``resync demo``: ingest the sample runbooks of ``config/runbooks`` (only what changed)."""
    from pathlib import Path

    from bot.kb.index import KbError, RunbookIndex
    from bot.kb.ingest import ingest

    folder = Path(__file__).resolve().parents[2] / "config" / "runbooks"
    if not folder.is_dir():
        return "Runbooks: no sample folder config/runbooks here; ingest yours with `resync kb ingest PATH`."
    try:
        index = RunbookIndex(settings)
    except KbError as exc:
        return f"Runbooks: not ingested ({exc})."
    try:
        report = ingest(index, [str(folder)])
        files = len(index.files())
    finally:
        index.close()
    samples = len(report.added) + len(report.changed) + len(report.unchanged)
    others = f", {files - samples} more from elsewhere" if files > samples else ""
    return (f"Runbooks: {samples} sample runbooks from config/runbooks in the knowledge base{others} "
            f"({report.summary()}).")
