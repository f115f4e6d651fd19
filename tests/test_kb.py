"""The runbook knowledge base against embedded Qdrant and the real offline model.

Nothing is mocked: the sample runbooks of ``config/runbooks`` are ingested once per module with
the real all-MiniLM-L6-v2 int8 model and BM25; the CLI runs as a subprocess whose every
non-loopback socket is refused; chat goes through the real agent and the TWS simulator; alerts
through the real FailureWatch; grounded answers through real litellm and the OpenAI-compatible stub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.agent import Agent, Hooks
from bot.alerts import FailureWatch
from bot.config import AlertSettings, KbSettings, LlmSettings, PolicySettings, StoreSettings, TwsSettings
from bot.events import Event, Posted, Reply
from bot.kb.answers import KnowledgeBase, failure_query
from bot.kb.chunking import chunk_document
from bot.kb.index import KbLocked, RunbookIndex
from bot.kb.ingest import ingest, remove
from bot.llm import ToolCaller
from bot.policy import parse_policy
from bot.simulator import run_simulator
from bot.simulator.catalog import TEMPLATES, job_kind
from bot.store import open_store
from bot.tools import TOOLS
from bot.tws.client import TwsClient
from tests.fakes.openai_stub import OpenAIStub, text, tool_call

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "config" / "runbooks"
POLICY = parse_policy({"roles": {"viewer": {"read": True}}, "bindings": {"slack:UOPS": ["viewer"]}})

# Refuses every socket that is not loopback or a Unix socket, and records who tried.
_GUARD = """
import os, socket
_log = os.environ["NET_GUARD_LOG"]
def _blocked(*args, **kwargs):
    with open(_log, "a") as f:
        f.write(repr(args[:2]) + "\\n")
    raise OSError("network blocked by the test")
_connect = socket.socket.connect
def connect(self, address):
    if self.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")):
        return _connect(self, address)
    _blocked(address)
socket.socket.connect = connect
socket.socket.connect_ex = connect
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host in ("127.0.0.1", "::1", "localhost", None):
        return _getaddrinfo(host, *args, **kwargs)
    _blocked(host)
socket.getaddrinfo = getaddrinfo
"""


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory: pytest.TempPathFactory) -> KbSettings:
    """The sample runbooks, ingested once for the module (the index is closed again)."""
    settings = KbSettings(path=tmp_path_factory.mktemp("kb") / "kb")
    index = RunbookIndex(settings)
    try:
        report = ingest(index, [str(RUNBOOKS)])
    finally:
        index.close()
    assert not report.skipped and len(report.added) == len(list(RUNBOOKS.rglob("*.md")))
    return settings


@pytest.fixture
def index(kb_settings: KbSettings) -> Iterator[RunbookIndex]:
    opened = RunbookIndex(kb_settings)
    yield opened
    opened.close()


@pytest.fixture
async def kb(kb_settings: KbSettings) -> AsyncIterator[KnowledgeBase]:
    knowledge = KnowledgeBase(kb_settings)
    yield knowledge
    await knowledge.close()


def _guarded_env(tmp_path: Path) -> dict[str, str]:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_GUARD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "QDRANT_", "RESYNC_"))}
    env.update(PYTHONPATH=f"{guard}{os.pathsep}{ROOT}", NET_GUARD_LOG=str(tmp_path / "net.log"),
               RESYNC_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return env


def _resync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


# --- the CLI, offline ---------------------------------------------------------------------

def test_the_cli_ingests_and_searches_with_the_network_blocked(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    for name in ("oracle/ora-00060-deadlock.md", "oracle/ora-01555-snapshot-too-old.md", "ftp/conexao-recusada.md"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RUNBOOKS / name, folder / name)
    (folder / "broken.md").write_bytes(b"\xff\xfe\x00\x00 not text")
    env = _guarded_env(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 443), 1)"],
                           env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "network blocked" in probe.stderr  # the guard is really in place
    (tmp_path / "net.log").unlink()

    ingested = _resync(env, "kb", "ingest", str(folder))
    assert ingested.returncode == 1, ingested.stderr  # one file was skipped
    assert "3 added" in ingested.stdout and "1 skipped" in ingested.stdout
    assert "skipped broken.md: binary data, not text" in ingested.stderr
    found = _resync(env, "kb", "search", "ORA-00060 deadlock", "--json", "-k", "3")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits and all(set(hit) == {"source", "heading", "score", "text"} for hit in hits)
    assert hits[0]["source"] == "oracle/ora-00060-deadlock.md"
    assert hits[0]["heading"].startswith("ORA-00060: deadlock detected")
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    stats = _resync(env, "kb", "stats")
    assert "files:       3" in stats.stdout and "embedded Qdrant" in stats.stdout and "all-MiniLM-L6-v2" in stats.stdout
    assert not (tmp_path / "net.log").exists(), (tmp_path / "net.log").read_text()  # nothing even tried
    # nothing downloaded into a hub cache; the one model file there is our int8 rewrite of the packaged one
    models = sorted((tmp_path / "cache").rglob("*.onnx"))
    assert [m.parent for m in models] == [tmp_path / "cache" / "resync" / "models"], models


def test_a_second_process_is_told_in_one_line_what_to_do_while_the_bot_holds_the_store(tmp_path: Path) -> None:
    env = _guarded_env(tmp_path)
    held = RunbookIndex(KbSettings(path=tmp_path / "data" / "kb"))  # as the running bot does
    try:
        result = _resync(env, "kb", "search", "anything")
        with pytest.raises(KbLocked):
            RunbookIndex(KbSettings(path=tmp_path / "data" / "kb"))
    finally:
        held.close()
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "open in another Resync process" in line and "stop it" in line and "QDRANT_URL" in line
    assert _resync(env, "kb", "stats").returncode == 0  # closed: usable again


# --- ingest: only what changed, nothing lost ------------------------------------------------

def test_reingest_embeds_only_what_changed_and_removes_what_disappeared(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "disk.md").write_text("# Disk full\n\n## Fix\nPurge old backups with BKP_PURGE, then rerun.\n")
    (folder / "sftp.txt").write_text("SFTP refused\n\nThe bank SFTP refused the connection: wait for the window.\n")
    (folder / "notes.html").write_text("<h1>Tablespace</h1><p>Add a datafile when ORA-01653 shows up.</p>")
    (folder / "image.png").write_bytes(b"\x89PNG")  # not a runbook kind: ignored in folders
    settings = KbSettings(path=tmp_path / "kb")
    index = RunbookIndex(settings)
    try:
        first = ingest(index, [str(folder)])
        assert sorted(first.added) == ["disk.md", "notes.html", "sftp.txt"] and first.chunks == 3
        again = ingest(index, [str(folder)])
        assert (again.added, again.changed, again.chunks) == ([], [], 0) and len(again.unchanged) == 3

        (folder / "disk.md").write_text("# Disk full\n\n## Fix\nPurge backups older than 14 days.\n\n## Escalate\nCall storage.\n")
        (folder / "sftp.txt").unlink()
        changed = ingest(index, [str(folder)])
        assert changed.changed == ["disk.md"] and changed.removed == ["sftp.txt"] and changed.chunks == 2
        assert {h.source for h in index.search("SFTP refused the connection", k=5)} <= {"disk.md", "notes.html"}
        assert any(h.heading == "Disk full › Escalate" for h in index.search("call the storage team", k=3))
        assert index.count() == 3  # disk.md: 2 chunks, notes.html: 1

        # A file that turns unreadable is skipped with one line; what was stored for it stays.
        (folder / "disk.md").write_bytes(b"\xc3\x28 invalid utf-8")
        bad = ingest(index, [str(folder), str(tmp_path / "missing"), str(folder / "image.png")])
        assert len(bad.skipped) == 3 and bad.removed == []
        assert any(line.startswith("disk.md: not UTF-8 text") for line in bad.skipped)
        assert any("no such file or folder" in line for line in bad.skipped)
        assert any("not a Markdown, text or HTML file" in line for line in bad.skipped)
        assert index.search("purge backups older than 14 days", k=1)[0].source == "disk.md"

        assert remove(index, str(folder / "notes.html")) == ["notes.html"]
        assert set(index.files()) == {str((folder / "disk.md").resolve())}
    finally:
        index.close()


def test_chunks_follow_headings_in_markdown_html_and_text() -> None:
    markdown = chunk_document("# Title\nintro\n## A\nalpha\n### A1\ndeep\n## B\nbeta\n```\n# not a heading\n```\n",
                              kind="markdown", name="x.md")
    assert [(c.heading, c.text.splitlines()[0]) for c in markdown] == [
        ("Title", "intro"), ("Title › A", "alpha"), ("Title › A › A1", "deep"), ("Title › B", "beta")]
    assert all(c.title == "Title" for c in markdown) and "# not a heading" in markdown[-1].text
    html = chunk_document("<html><head><title>T</title><script>x()</script></head><body><h1>Main</h1><p>one</p>"
                          "<h2>Sub</h2><p>two &amp; three</p></body></html>", kind="html", name="p.html")
    assert [(c.heading, c.text) for c in html] == [("Main", "one"), ("Main › Sub", "two & three")]
    plain = chunk_document("Backup runbook\n\nSymptoms:\nthe tar fails\n\nFix:\npurge\n", kind="text", name="b.txt")
    assert [(c.title, c.heading, c.text) for c in plain] == [
        ("Backup runbook", "Backup runbook › Symptoms", "the tar fails"), ("Backup runbook", "Backup runbook › Fix", "purge")]
    long = chunk_document("# L\n\n" + "\n\n".join(" ".join(["word"] * 60) for _ in range(6)), kind="markdown", name="l.md")
    assert len(long) == 3 and all(len(c.text.split()) <= 160 for c in long)


# --- search across languages ------------------------------------------------------------------

@pytest.mark.parametrize(("question", "expected"), [
    ("ORA-00060 deadlock", "oracle/ora-00060-deadlock.md"),
    ("ORA-00060", "oracle/ora-00060-deadlock.md"),  # a bare code: fusion alone put ORA-12541's runbook first
    ("SQL0911N", "db2/sql0911n-deadlock-timeout.md"),
    ("how do I fix ORA-00060?", "oracle/ora-00060-deadlock.md"),
    ("o que fazer quando o SFTP falha?", "ftp/conexao-recusada.md"),  # pt question, pt runbook
    ("how to fix a full tablespace in Oracle?", "oracle/ora-01653-tablespace-cheia.md"),  # en question, pt runbook
    ("o backup falhou porque o disco encheu", "shell/disk-quota-exceeded.md"),  # pt question, en runbook
])
def test_search_finds_the_runbook_in_either_language(index: RunbookIndex, question: str, expected: str) -> None:
    assert index.search(question, k=3)[0].source == expected


# --- chat -------------------------------------------------------------------------------------

@pytest.fixture
async def chat(tmp_path: Path, kb: KnowledgeBase) -> AsyncIterator[tuple[Agent, Any]]:
    async with run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=1.0) as (sim, url):
        async with TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=5, retries=1)) as tws, \
                open_store(StoreSettings(data_dir=tmp_path)) as store:
            yield Agent(tws=tws, store=store, policy=POLICY, settings=PolicySettings(), hooks=Hooks(runbooks=kb)), sim


def _event(text: str) -> Event:
    return Event(platform="slack", workspace="T1", channel="C1", user_id="UOPS", text=text)


async def test_chat_answers_runbook_questions_with_passages_sources_and_headings(chat: tuple[Agent, Any]) -> None:
    agent, _ = chat
    [en] = await agent.handle(_event("how do I fix ORA-00060?"))
    assert "oracle/ora-00060-deadlock.md" in en.text and "ORA-00060: deadlock detected" in en.text
    assert en.text.startswith("From the runbooks:") and "Rerun the failed job" in en.text
    [pt] = await agent.handle(_event("o que fazer quando o SFTP falha?"))
    assert pt.text.startswith("Dos runbooks:") and "ftp/conexao-recusada.md" in pt.text
    assert "conexão recusada › Correção" in pt.text  # the runbook's fix, not only the symptoms it matched
    [odd] = await agent.handle(_event("is there a runbook for the cafeteria menu?"))
    assert odd.text.startswith("No runbook clearly matches")  # passages shown, but never as an answer


def _job_of_kind(sim: Any, kind: str) -> dict[str, Any]:
    kinds = {t.name: t.kind for t in TEMPLATES}
    for job in sim.jobs_in_state("SUCC", "SCHED", "HOLD", "WAIT", "READY"):
        template = max((t for t in kinds if job["jobStreamName"].startswith(t)), key=len, default=None)
        if template and job_kind(kinds[template], job["name"]) == kind:
            return job
    raise AssertionError(f"no {kind} job in the simulated plan")


def _full_name(job: dict[str, Any]) -> str:
    return f"{job['workstation'].strip('/')}#{job['jobStreamName']}.{job['name']}"


async def test_why_did_it_fail_adds_the_runbook_for_the_jobs_error(chat: tuple[Agent, Any]) -> None:
    agent, sim = chat
    job = _job_of_kind(sim, "ftp")
    sim.force_fail(job["id"], 4)  # the simulator's ftp rc 4: "ftp: connect: Connection refused"
    replies = await agent.handle(_event(f"why did {_full_name(job)} fail?"))
    answer = replies[0].text
    assert "Connection refused" in answer
    assert "📘 Runbook: ftp/conexao-recusada.md — FTP/SFTP do banco: conexão recusada" in answer


# --- alerts -----------------------------------------------------------------------------------

class Recorder:
    def handles(self, target: str) -> bool:
        return target.startswith("slack:")

    def __init__(self) -> None:
        self.posts: list[Reply] = []

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        self.posts.append(reply)
        return Posted(target=target, message_ref=f"m{len(self.posts)}", thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        pass


async def test_a_failure_alert_carries_the_best_runbook_and_none_without_a_match(tmp_path: Path, kb: KnowledgeBase) -> None:
    async with run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=1.0) as (sim, url):
        async with TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=5, retries=1)) as tws, \
                open_store(StoreSettings(data_dir=tmp_path)) as store:
            recorder = Recorder()
            watch = FailureWatch(AlertSettings(notify_pend=False, default_targets=("slack:C1",)), tws=tws, store=store,
                                 notifiers=[recorder], owner="test", single_instance=True, runbook_search=kb)
            await watch.poll_once()
            job = _job_of_kind(sim, "oracle")
            sim.force_fail(job["id"], 12)  # ORA-01017 or ORA-12541, both rc 12 in the simulator
            await watch.poll_once()
            assert await watch.deliver_due() == 1
    [alert] = recorder.posts
    code = "ORA-01017" if "ORA-01017" in str(alert) else "ORA-12541"
    expected = {"ORA-01017": "oracle/ora-01017-invalid-password.md", "ORA-12541": "oracle/ora-12541-tns-no-listener.md"}
    assert f"📘 Runbook: {expected[code]} — {code}" in alert.text
    # No error line, or only informational ones: no runbook line rather than a guess.
    assert await kb(failure_query("LOAD01", "PAYROLL_DAILY", 8, ["= Exit Status : 8"])) is None
    info = ['SQL3110N  The utility has completed processing.  "216084" rows were read from the input file.']
    assert await kb(failure_query("DB_RUNSTATS", "DB_REORG", 8, info)) is None
    assert await kb(failure_query("BI_CUBE_VENDAS", "BI_REFRESH", 8, ["INFO: processando lote 3 de 9"])) is None


# --- grounded answers with an LLM --------------------------------------------------------------

async def test_grounded_answers_cite_passages_or_say_i_dont_know(kb_settings: KbSettings) -> None:
    async with OpenAIStub([text("Wait for the other job, then rerun the failed one [1]."),
                           text("Just restart the whole server, that always works."),
                           text("NO_ANSWER")]) as stub:
        knowledge = KnowledgeBase(kb_settings, llm=LlmSettings(model="openai/stub", api_base=stub.api_base,
                                                               api_key="sk-test-kb", timeout=10))
        try:
            [cited] = await knowledge.answer("how do I fix ORA-00060?", lang="en")
            [uncited] = await knowledge.answer("como resolver o ORA-00060?", lang="pt")
            [declined] = await knowledge.answer("what does ORA-00060 mean for payroll?", lang="en")
            calls = len(stub.completions)
            [offtopic] = await knowledge.answer("quem ganhou o jogo ontem?", lang="pt")
        finally:
            await knowledge.close()
        sent = stub.completions[0].json
    assert cited.text.startswith("Wait for the other job, then rerun the failed one [1].")
    assert "Sources:" in cited.text and "[1] 📘 *oracle/ora-00060-deadlock.md*" in cited.text
    assert uncited.text.startswith("Não sei: os runbooks não respondem a isso.")  # no citation: not grounded
    assert "restart the whole server" not in uncited.text and "oracle/ora-00060-deadlock.md" in uncited.text
    assert declined.text.startswith("I don't know") and "oracle/ora-00060-deadlock.md" in declined.text
    assert calls == 3 and len(stub.completions) == 3  # nothing relevant: the model is not even asked
    assert offtopic.text.startswith("Não sei") and "Nenhum runbook corresponde claramente" in offtopic.text
    prompt = " ".join(m["content"] for m in sent["messages"])
    assert "how do I fix ORA-00060?" in prompt and "ORA-00060" in prompt and "[1]" in prompt
    assert "ONLY the numbered runbook passages" in prompt


async def test_a_runbook_question_the_model_routes_keeps_its_cited_passages(tmp_path: Path, kb_settings: KbSettings) -> None:
    async with OpenAIStub([tool_call("search_runbooks", {"query": "ORA-00060 deadlock"}),
                           text("Wait for the other job to finish, then rerun [1].")]) as stub:
        llm = LlmSettings(model="openai/stub", api_base=stub.api_base, api_key="sk-test-kb", timeout=10)
        knowledge = KnowledgeBase(kb_settings, llm=llm)
        async with run_simulator(jobs=100, seed=5, failure_rate=0.0, speed=1.0) as (_, url):
            async with TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=5)) as tws, \
                    open_store(StoreSettings(data_dir=tmp_path)) as store:
                agent = Agent(tws=tws, store=store, policy=POLICY, settings=PolicySettings(),
                              llm=ToolCaller(llm, tuple(TOOLS.values())), hooks=Hooks(runbooks=knowledge))
                try:
                    [reply] = await agent.handle(_event("tonight's thing with the two loads locking each other, ideas?"))
                finally:
                    await knowledge.close()
        assert len(stub.completions) == 2  # choose, then the grounded answer: no third "explain" call
    assert reply.text.startswith("Wait for the other job to finish, then rerun [1].")
    assert "[1] 📘 *oracle/ora-00060-deadlock.md*" in reply.text


def test_the_model_loader_is_reusable_and_lazy() -> None:
    code = textwrap.dedent("""
        import sys
        import bot.cli, bot.wiring, bot.kb.answers
        heavy = [m for m in ("fastembed", "qdrant_client", "onnxruntime") if m in sys.modules]
        assert not heavy, heavy
        from bot.kb.model import dense_model, embed_dense
        vectors = embed_dense(["deadlock detected", "impasse detectado"])
        assert len(vectors) == 2 and len(vectors[0]) == 384
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_packaged_model_runs_as_int8_with_the_float_models_embeddings(tmp_path: Path) -> None:
    """The rewrite (bot/kb/model.py) computes every MatMul on the stored int8 weights, and its
    embeddings stay those of the float graph the package ships (cosine above 0.98)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from bot.kb import model

    source = model._onnx_path()
    rewritten = onnx.load_from_string(model._int8_graph(source))
    ops = [node.op_type for node in rewritten.graph.node]
    assert ops.count("DynamicQuantizeMatMul") == 36 and "MatMul" in ops  # 6 layers x 6 weights; attention stays float
    float_weights = [t.name for t in rewritten.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and
                     np.prod(t.dims) > 100_000]
    assert float_weights == [], float_weights  # no weight is rebuilt in float any more
    tokenizer = model.dense_model().model.tokenizer
    original = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"])
    for text in ("ORA-00060: deadlock detected while waiting for resource",
                 "o SFTP do banco recusou a conexão; aguarde a janela e reexecute o job"):
        encoded = tokenizer.encode(text)
        feeds = {"input_ids": np.array([encoded.ids]), "attention_mask": np.array([encoded.attention_mask]),
                 "token_type_ids": np.zeros((1, len(encoded.ids)), dtype=np.int64)}
        a, b = (session.run(None, feeds)[0][0].mean(axis=0) for session in (original, int8))
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.98


def test_the_rewritten_model_is_cached_and_an_unknown_graph_is_loaded_as_it_is(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from onnx import TensorProto, helper

    from bot.kb import model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, temporary = model._int8_model(model._onnx_path())
    assert not temporary and first.parent == tmp_path / "cache" / "resync" / "models"
    written = first.stat().st_mtime_ns
    again, _ = model._int8_model(model._onnx_path())
    assert again == first and again.stat().st_mtime_ns == written  # reused, not rewritten

    plain = tmp_path / "plain.onnx"  # a graph without int8 weights: nothing to rewrite
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(plain))
    assert model._int8_model(plain) == (plain, False)


def test_vectors_of_another_model_are_embedded_again(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "disk.md").write_text("# Disk full\n\n## Fix\nPurge old backups with BKP_PURGE, then rerun.\n")
    (folder / "sftp.txt").write_text("SFTP refused\n\nThe bank SFTP refused the connection: wait for the window.\n")
    index = RunbookIndex(KbSettings(path=tmp_path / "kb"))
    try:
        assert len(ingest(index, [str(folder)]).added) == 2
        index.client.update_collection("resync_runbooks", metadata={"dense_model": "an-older-model"})
        upgraded = ingest(index, [str(folder)])
        assert sorted(upgraded.changed) == ["disk.md", "sftp.txt"] and upgraded.chunks == 2
        assert index.embedded_with() == "resync/all-MiniLM-L6-v2-int8-dq"
        assert ingest(index, [str(folder)]).chunks == 0  # and only once
    finally:
        index.close()


def test_kb_settings_name_the_server_and_hide_its_key(tmp_path: Path) -> None:
    from bot.config import load_kb_settings, load_settings
    from bot.errors import ConfigError

    local = load_kb_settings({"RESYNC_DATA_DIR": str(tmp_path)})
    assert local.path == tmp_path / "kb" and local.qdrant_url is None
    server = load_kb_settings({"QDRANT_URL": "https://qdrant.example.com:6333/", "QDRANT_API_KEY": "qk-secret-1234"})
    assert server.qdrant_url == "https://qdrant.example.com:6333" and "qk-secret" not in repr(server)
    settings = load_settings({"TWS_URL": "https://tws.example.com", "TWS_USER": "u", "TWS_PASSWORD": "p" * 8,
                              "QDRANT_API_KEY": "qk-secret-1234"})
    assert "qk-secret-1234" in settings.secrets()
    with pytest.raises(ConfigError, match="QDRANT_URL"):
        load_kb_settings({"QDRANT_URL": "qdrant:6333"})
    with pytest.raises(ConfigError, match="RESYNC_KB_MIN_SCORE"):
        load_kb_settings({"RESYNC_KB_MIN_SCORE": "high"})
