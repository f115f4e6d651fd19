"""Ingesting runbook files: only what changed is embedded again, and nothing stored is lost.

Each file's SHA-256 is kept with it: an unchanged file costs one hash, a changed one is chunked
and embedded again, a file that disappeared from an ingested folder is removed. A file that cannot
be read or parsed is reported in one line and counted; what is already stored for it stays.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bot.kb import model
from bot.kb.chunking import ParseError, chunk_document, decode, kind_of
from bot.kb.glossary import expand
from bot.kb.index import ChunkRecord, FileRecord, RunbookIndex, now

MAX_BYTES = 5 * 1024 * 1024


@dataclass(slots=True, kw_only=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line each: what and why
    chunks: int = 0  # chunks embedded in this run
    seconds: float = 0.0

    def summary(self) -> str:
        rate = f", {self.chunks / self.seconds:.0f} chunks/s" if self.chunks and self.seconds > 0 else ""
        return (f"{len(self.added)} added, {len(self.changed)} changed, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed, {len(self.skipped)} skipped; {self.chunks} chunk(s) embedded"
                f" in {self.seconds:.1f}s{rate}")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Candidate:
    path: Path
    source: str
    root: str


Progress = Callable[[int, int, str], None]  # (done, total, what)


def _walk(paths: Sequence[str], report: IngestReport) -> tuple[list[_Candidate], list[str]]:
    found: list[_Candidate] = []
    roots: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            root = path.resolve()
            roots.append(str(root))
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    if not name.startswith(".") and kind_of(file):
                        found.append(_Candidate(path=file, source=file.relative_to(root).as_posix(), root=str(root)))
        elif path.is_file():
            if kind_of(path) is None:
                report.skipped.append(f"{raw}: not a Markdown, text or HTML file (.md, .txt, .html)")
                continue
            found.append(_Candidate(path=path.resolve(), source=path.name, root=""))
        else:
            report.skipped.append(f"{raw}: no such file or folder")
    unique = {str(c.path): c for c in found}
    return list(unique.values()), roots


def ingest(index: RunbookIndex, paths: Sequence[str], *, progress: Progress | None = None,
           batch_size: int = 64) -> IngestReport:
    started = now()
    report = IngestReport()
    candidates, roots = _walk(paths, report)
    known = index.files()
    # Vectors from another model do not compare with this one's questions: embed everything again.
    stale = bool(known) and index.embedded_with() != model.DENSE_MODEL
    redone: set[str] = set()
    total = len(candidates)
    for done, candidate in enumerate(candidates, start=1):
        key = str(candidate.path)
        try:
            data = _read(candidate.path)
            digest = hashlib.sha256(data).hexdigest()
            previous = known.get(key)
            if (previous is not None and not stale and previous.sha256 == digest
                    and previous.source == candidate.source):
                report.unchanged.append(candidate.source)
                if progress:
                    progress(done, total, f"unchanged {candidate.source}")
                continue
            kind = kind_of(candidate.path) or "text"
            chunks = chunk_document(decode(data, candidate.source), kind=kind, name=candidate.path.name)
        except (OSError, ParseError) as exc:
            report.skipped.append(f"{candidate.source}: {_why(exc)}")
            if progress:
                progress(done, total, f"skipped {candidate.source}")
            continue
        records = [ChunkRecord(title=c.title, heading=c.heading, text=c.text, embedding_text=expand(c.embedding_text()) if index.glossary else c.embedding_text())
                   for c in chunks]
        texts = [r.embedding_text for r in records]
        dense = model.embed_dense(texts, batch_size=batch_size)
        sparse = model.embed_sparse(texts)
        record = FileRecord(path=key, source=candidate.source, root=candidate.root, sha256=digest,
                            chunks=len(records), ingested_at=now())
        index.put_file(record, records, dense, sparse, previous=previous)
        redone.add(key)
        (report.changed if previous is not None else report.added).append(candidate.source)
        report.chunks += len(records)
        if progress:
            progress(done, total, f"{'changed' if previous else 'added'} {candidate.source} ({len(records)} chunks)")
    seen = {str(c.path) for c in candidates}
    for record in known.values():
        if record.root and record.root in roots and record.path not in seen:
            index.remove_file(record)
            redone.add(record.path)
            report.removed.append(record.source)
            if progress:
                progress(total, total, f"removed {record.source}")
    if stale and redone >= known.keys():
        index.mark_embedded_with_current_model()
    report.seconds = now() - started
    return report


def remove(index: RunbookIndex, target: str) -> list[str]:
    """Remove a file, every file under a folder, or files by their shown source; the sources removed."""
    resolved = str(Path(target).expanduser().resolve())
    gone = []
    for record in index.files().values():
        if record.path == resolved or record.path.startswith(resolved.rstrip("/") + "/") or record.source == target:
            index.remove_file(record)
            gone.append(record.source)
    return sorted(gone)


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ParseError(f"{size // 1024 // 1024} MB is larger than the {MAX_BYTES // 1024 // 1024} MB limit")
    return path.read_bytes()


def _why(exc: Exception) -> str:
    if isinstance(exc, ParseError):
        text = str(exc)
        return text.split(": ", 1)[1] if ": " in text else text
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read ({type(exc).__name__})"


def terminal_progress(stream: TextIO = sys.stderr) -> Progress:
    """A one-line bar on a terminal, one plain line per file otherwise (logs, pipes, CI)."""
    tty = stream.isatty()

    def show(done: int, total: int, what: str) -> None:
        if tty:
            width = 24
            filled = int(width * done / total) if total else width
            line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"[:120]
            stream.write(line.ljust(120) + ("\n" if done == total else ""))
        else:
            stream.write(f"{done}/{total} {what}\n")
        stream.flush()

    return show


def iter_sources(records: Iterable[FileRecord]) -> list[str]:
    return sorted(r.source for r in records)
