"""The runbook index in Qdrant: chunks with a dense and a BM25 vector, and one record per file.

Two collections: ``resync_runbooks`` holds the chunks (named vectors ``dense``, cosine, and
``bm25``, sparse with Qdrant's IDF modifier), ``resync_runbook_files`` one vector-less record per
ingested file (its path, source, content hash, chunk count), so re-ingesting can tell what changed
without reading every chunk. Both live in embedded Qdrant under ``RESYNC_DATA_DIR/kb`` or on the
server named by ``QDRANT_URL``.

Embedded Qdrant lets one process at a time open its folder. A second one (``resync kb ingest``
while ``resync serve`` runs) gets ``KbLocked``, whose message says in one line what to do: the
running bot keeps its copy in memory, so writing behind its back could not work anyway.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from bot.config import KbSettings
from bot.errors import ResyncError
from bot.kb import model
from bot.kb.glossary import expand

log = structlog.get_logger(__name__)

CHUNKS = "resync_runbooks"
FILES = "resync_runbook_files"
Mode = str  # "hybrid" (RRF), "dense", "sparse"; "hybrid-dbsf" for comparison in bench/kb.py
_CANDIDATES = 30  # per prefetch, before fusion
_NS = uuid.UUID("6f1c1a52-5b1e-4c55-9a57-0d7c3f2f8a10")
#: Error codes: ORA-00060, SQL0911N, AWSBDW057E, S0C7...
_CODE = re.compile(r"\b(?:[A-Z]{2,6}-\d{3,5}|[A-Z]{3,6}\d{3,5}[A-Z]?|S[0-9][0-9A-F]{2})\b")


def error_codes(text: str) -> set[str]:
    return set(_CODE.findall(text.upper()))


class KbError(ResyncError):
    """The knowledge base cannot be opened or used."""


class KbLocked(KbError):
    """Another process holds the embedded Qdrant folder."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    source: str
    heading: str
    title: str
    text: str
    score: float  # the fused (or single-vector) score Qdrant ranked by
    dense: float | None = None  # cosine similarity of the query to this chunk, when computed
    path: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    path: str  # absolute path: the identity of a file
    source: str  # shown to users: relative to the ingested folder, or the file name
    root: str  # the folder it was ingested from ("" for a file named directly)
    sha256: str
    chunks: int
    ingested_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkRecord:
    title: str
    heading: str
    text: str
    embedding_text: str


def _point_id(path: str, n: int) -> str:
    return str(uuid.uuid5(_NS, f"{path}#{n}"))


class RunbookIndex:
    """One open Qdrant client; ``close()`` it (the embedded store flushes and unlocks)."""

    def __init__(self, settings: KbSettings, *, glossary: bool = True) -> None:
        self.settings = settings
        self.glossary = glossary  # cross-language term expansion (bench/kb.py compares without)
        self.client = _open(settings)
        self._ensure()

    @property
    def where(self) -> str:
        return self.settings.qdrant_url or str(self.settings.path)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception as exc:  # closing must not hide the error that ended the command
            log.warning("kb_close_failed", error=type(exc).__name__)

    def _ensure(self) -> None:
        from qdrant_client import models

        if not self.client.collection_exists(CHUNKS):
            self.client.create_collection(
                CHUNKS,
                vectors_config={"dense": models.VectorParams(size=model.DENSE_DIM, distance=models.Distance.COSINE)},
                sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
                metadata={"dense_model": model.DENSE_MODEL, "sparse_model": model.SPARSE_MODEL})
        if not self.client.collection_exists(FILES):
            self.client.create_collection(FILES, vectors_config={})

    def embedded_with(self) -> str | None:
        """The dense model the stored chunks were embedded with (None: not recorded)."""
        metadata = self.client.get_collection(CHUNKS).config.metadata or {}
        return metadata.get("dense_model")

    def mark_embedded_with_current_model(self) -> None:
        self.client.update_collection(CHUNKS, metadata={"dense_model": model.DENSE_MODEL,
                                                        "sparse_model": model.SPARSE_MODEL})

    # --- files --------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        records: dict[str, FileRecord] = {}
        offset = None
        while True:
            points, offset = self.client.scroll(FILES, limit=256, offset=offset, with_payload=True, with_vectors=False)
            for point in points:
                p = point.payload or {}
                records[p["path"]] = FileRecord(path=p["path"], source=p["source"], root=p.get("root", ""),
                                                sha256=p["sha256"], chunks=int(p["chunks"]),
                                                ingested_at=float(p["ingested_at"]))
            if offset is None:
                return records

    def put_file(self, record: FileRecord, chunks: Sequence[ChunkRecord], dense: Sequence[Sequence[float]],
                 sparse: Sequence[Any], *, previous: FileRecord | None = None) -> None:
        """Store a file's chunks, then its record; then drop chunks an older version had beyond these."""
        from qdrant_client import models

        points = [models.PointStruct(
            id=_point_id(record.path, n),
            vector={"dense": list(dense[n]),
                    "bm25": models.SparseVector(indices=sparse[n].indices.tolist(), values=sparse[n].values.tolist())},
            payload={"path": record.path, "source": record.source, "root": record.root, "chunk": n,
                     "title": chunk.title, "heading": chunk.heading, "text": chunk.text})
            for n, chunk in enumerate(chunks)]
        for start in range(0, len(points), 256):
            self.client.upsert(CHUNKS, points=points[start:start + 256], wait=True)
        if previous is not None and previous.chunks > len(chunks):
            self.client.delete(CHUNKS, points_selector=[_point_id(record.path, n) for n in range(len(chunks), previous.chunks)])
        self.client.upsert(FILES, points=[models.PointStruct(id=_point_id(record.path, -1), vector={}, payload={
            "path": record.path, "source": record.source, "root": record.root, "sha256": record.sha256,
            "chunks": len(chunks), "ingested_at": record.ingested_at})], wait=True)

    def remove_file(self, record: FileRecord) -> None:
        from qdrant_client import models

        self.client.delete(CHUNKS, points_selector=models.FilterSelector(filter=models.Filter(must=[
            models.FieldCondition(key="path", match=models.MatchValue(value=record.path))])), wait=True)
        self.client.delete(FILES, points_selector=[_point_id(record.path, -1)], wait=True)

    # --- search -------------------------------------------------------------------------------
    def search(self, query: str, *, k: int = 5, mode: Mode = "hybrid", context: str = "") -> list[Hit]:
        """The ``k`` best chunks for ``query``: dense and BM25 candidates fused by RRF in Qdrant.

        The dense cosine of each hit is kept (``Hit.dense``): fused RRF scores depend only on
        ranks, so they cannot tell a relevant best hit from an irrelevant one; the cosine can.
        """
        from qdrant_client import models

        text = expand(query, question=True) if self.glossary else query
        codes = error_codes(query) if mode == "hybrid" else set()
        limit = max(k, 10) if codes else k
        dense = model.embed_dense([text])[0]
        sparse = model.embed_sparse([f"{text} {context}" if context else text], query=True)[0]
        sparse_vector = models.SparseVector(indices=sparse.indices.tolist(), values=sparse.values.tolist())
        if mode == "dense":
            ranked = self.client.query_points(CHUNKS, query=dense, using="dense", limit=k, with_payload=True,
                                              with_vectors=["dense"])
        elif mode == "sparse":
            ranked = self.client.query_points(CHUNKS, query=sparse_vector, using="bm25", limit=k, with_payload=True,
                                              with_vectors=["dense"])
        else:
            fusion = models.Fusion.DBSF if mode == "hybrid-dbsf" else models.Fusion.RRF
            ranked = self.client.query_points(
                CHUNKS, prefetch=[models.Prefetch(query=dense, using="dense", limit=_CANDIDATES),
                                  models.Prefetch(query=sparse_vector, using="bm25", limit=_CANDIDATES)],
                query=models.FusionQuery(fusion=fusion), limit=limit, with_payload=True, with_vectors=["dense"])
        hits = []
        for point in ranked.points:
            p = point.payload or {}
            vector = point.vector.get("dense") if isinstance(point.vector, dict) else None
            cosine = float(sum(a * b for a, b in zip(dense, vector))) if vector else None  # both normalised
            hits.append(Hit(source=p.get("source", ""), heading=p.get("heading", ""), title=p.get("title", ""),
                            text=p.get("text", ""), score=float(point.score), dense=cosine, path=p.get("path", "")))
        if codes:  # a question naming an error code ("ORA-00060") is about the chunks that name it
            hits.sort(key=lambda hit: not codes & error_codes(f"{hit.title} {hit.heading} {hit.text}"))
        return hits[:k]

    def chunks_of(self, path: str) -> list[Hit]:
        """Every chunk of one file, in order (score 0): to show a runbook's fix next to its symptoms."""
        from qdrant_client import models

        points, _ = self.client.scroll(CHUNKS, limit=256, with_payload=True, with_vectors=False, scroll_filter=models.Filter(
            must=[models.FieldCondition(key="path", match=models.MatchValue(value=path))]))
        ordered = sorted(points, key=lambda point: (point.payload or {}).get("chunk", 0))
        return [Hit(source=p.get("source", ""), heading=p.get("heading", ""), title=p.get("title", ""),
                    text=p.get("text", ""), score=0.0, path=p.get("path", "")) for p in (pt.payload or {} for pt in ordered)]

    def count(self) -> int:
        return self.client.count(CHUNKS, exact=True).count


def _open(settings: KbSettings) -> Any:
    from qdrant_client import QdrantClient

    if settings.qdrant_url:
        try:
            client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=10)
            client.get_collections()
        except Exception as exc:
            raise KbError(f"cannot reach the Qdrant server at QDRANT_URL={settings.qdrant_url}: {type(exc).__name__}") from None
        return client
    settings.path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(settings.path))
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise KbLocked(
            f"the knowledge base in {settings.path} is open in another Resync process (a running bot): stop it, "
            "run this command, then start it again; or set QDRANT_URL to a Qdrant server so that several "
            "processes can share the knowledge base") from None


def now() -> float:
    return time.time()


def data_exists(settings: KbSettings) -> bool:
    """Whether there is a knowledge base to load, decided without importing Qdrant or fastembed."""
    return bool(settings.qdrant_url) or (Path(settings.path) / "collection" / CHUNKS).exists()
