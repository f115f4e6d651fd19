"""The ``resync`` command: serve, worker, demo, ask, simulator, tws, audit.

Each subcommand reads the configuration once, sets up logging, and owns one entry point's
catch-all: a configuration or connection problem ends with one clear line and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sys
from contextlib import AsyncExitStack
from dataclasses import asdict, replace

import structlog

from bot.config import ConfigError, LogSettings, Settings, load_settings
from bot.errors import ResyncError
from bot.logs import configure_logging

log = structlog.get_logger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    # Until a command reads its settings, log to stderr: stdout is for answers (e.g. --json).
    level = os.environ.get("LOG_LEVEL", "").upper()
    configure_logging(LogSettings(level=level if level in _LEVELS else "WARNING", format="console"), final=False)
    if not getattr(args, "run", None):
        parser.print_help()
        raise SystemExit(2)
    try:
        result = args.run(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        raise SystemExit(result or 0)
    except ResyncError as exc:  # configuration, store or TWS trouble: one clear line
        print(f"resync: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line the prompt was on
        raise SystemExit(130) from None
    except BrokenPipeError:  # `resync tws jobs | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        raise SystemExit(141) from None  # 128 + SIGPIPE, as for any Unix tool


_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resync", description="ChatOps for HCL Workload Automation (TWS).")
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web app (Slack events, /api/chat, health, metrics) and the alert poller")
    serve.add_argument("--port", type=_port, help="listen port (default: PORT or 8080; 0 picks a free one)")
    serve.add_argument("--host", help="listen address (default 0.0.0.0)")
    serve.add_argument("--no-poll", action="store_true", help="do not run the failure poller in this process")
    serve.set_defaults(run=_serve)

    worker = sub.add_parser("worker", help="run only the failure poller and alert delivery")
    worker.set_defaults(run=_worker)

    demo = sub.add_parser("demo", help="chat in the console with a built-in TWS simulator (no tokens needed)")
    demo.add_argument("--jobs", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--failure-rate", type=float, default=0.06)
    demo.add_argument("--lang", choices=["en", "pt"], help="answer in this language (default: the message's)")
    demo.set_defaults(run=_demo)

    ask = sub.add_parser("ask", help="ask one question (TEXT '-' reads one utterance per line from stdin)")
    ask.add_argument("text", nargs="+", metavar="TEXT")
    ask.add_argument("--dry-run", action="store_true", help="only show what the message means; do not call TWS")
    ask.add_argument("--json", action="store_true", help="print JSON lines")
    ask.set_defaults(run=_ask)

    sim = sub.add_parser("simulator", help="run the TWS simulator (credentials: TWS_USER/TWS_PASSWORD, default resync/resync)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=31116)
    sim.add_argument("--jobs", type=int, default=2000)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--failure-rate", type=float, default=0.05)
    sim.add_argument("--speed", type=float, default=60.0, help="virtual seconds per real second")
    sim.add_argument("--wire", default="documented",
                     help="serve alternative wire shapes too, comma-separated: bare-names, json-log, run-id, v1-log, "
                          "no-dep-ids (docs/tws-wire.md); default: only the documented shapes")
    sim.add_argument("--log-delay", type=float, default=0.0,
                     help="virtual seconds after a job ends during which its log is 'not retrieved yet' (EQQM637I)")
    sim.set_defaults(run=_simulator)

    tws = sub.add_parser("tws", help="check the TWS connection from a terminal")
    tws_sub = tws.add_subparsers(metavar="WHAT")
    jobs = tws_sub.add_parser("jobs", help="list jobs in the current plan")
    jobs.add_argument("--status", help="an internal status or FAILED")
    jobs.add_argument("--stream")
    jobs.add_argument("--workstation")
    jobs.add_argument("--name")
    jobs.add_argument("--limit", type=int, default=100)
    jobs.set_defaults(run=_tws_jobs)
    job = tws_sub.add_parser("job", help="one job, by JOB, STREAM.JOB or WS#STREAM.JOB")
    job.add_argument("name")
    job.add_argument("--log", action="store_true", help="also print the end of its log")
    job.set_defaults(run=_tws_job)
    health = tws_sub.add_parser("health", help="engine info and connection state")
    health.set_defaults(run=_tws_health)

    digest = sub.add_parser("digest", help="the last 24 hours of alerts, as the daily digest says them")
    digest.add_argument("--png", metavar="PATH", help="also write the chart of failures and recoveries per hour")
    digest.add_argument("--timezone", default="UTC", help="IANA time zone of the hours (default UTC)")
    digest.add_argument("--lang", choices=["en", "pt"], default="en")
    digest.set_defaults(run=_digest)

    audit = sub.add_parser("audit", help="read and verify the audit log")
    audit_sub = audit.add_subparsers(metavar="WHAT")
    tail = audit_sub.add_parser("tail", help="the newest audit records")
    tail.add_argument("-n", type=int, default=20)
    tail.add_argument("--json", action="store_true")
    tail.set_defaults(run=_audit_tail)
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 if a record was edited, deleted or reordered")
    verify.set_defaults(run=_audit_verify)

    teams = sub.add_parser("teams", help="Teams: the conversations alerts can go to, the app package")
    teams_sub = teams.add_subparsers(metavar="WHAT")
    conversations = teams_sub.add_parser("conversations", help="conversations the bot can post in (teams:<id> targets)")
    conversations.add_argument("--json", action="store_true", help="print one JSON object per conversation")
    conversations.set_defaults(run=_teams_conversations)
    package = teams_sub.add_parser("package", help="write the Teams app package (manifest and icons) to upload")
    package.add_argument("--out", default="resync-teams.zip", help="where to write the zip (default resync-teams.zip)")
    package.set_defaults(run=_teams_package)

    from bot.kb.cli import add_parser as add_kb_parser  # no heavy imports: those wait for a kb command

    add_kb_parser(sub)
    return parser


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log, settings.secrets())
    return settings


# --- serve / worker -----------------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.web import create_app

    settings = _settings()
    web_settings = replace(settings.web, port=settings.web.port if args.port is None else args.port,
                           host=args.host or settings.web.host)
    # Listen before anything else starts (store, poller, Slack): a bad or busy port is one line, at once.
    # With port 0 the kernel picks one, and the log can say which.
    sock = _listen(web_settings.host, web_settings.port)
    web_settings = replace(web_settings, port=sock.getsockname()[1])
    settings = replace(settings, web=web_settings)
    log.info("serve_starting", port=web_settings.port, store=("redis" if settings.store.redis_url else "sqlite"),
             slack=settings.slack is not None, teams=settings.teams is not None, llm=settings.llm is not None,
             poll=settings.alerts.enabled and not args.no_poll)
    web.run_app(create_app(settings, poll=not args.no_poll), sock=sock,
                access_log=None, print=None, shutdown_timeout=0.5)  # SIGTERM: out within 2 s
    _exit_now()


def _exit_now() -> None:
    """Leave at once once the app has closed everything it opened (store, clients, outbox).

    The interpreter's own teardown of the loaded libraries (litellm, onnxruntime...) takes seconds
    on a busy host, and SIGTERM must end the process within 2 s: nothing is left to finalize.
    """
    import logging

    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def _port(text: str) -> int:
    """``--port``: a usage error (one line) unless 0-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def _listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=128)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}") from None


async def _worker(args: argparse.Namespace) -> None:
    from bot.wiring import assemble

    settings = _settings()
    if not settings.alerts.enabled:
        raise ConfigError("RESYNC_ALERTS is false: the worker has nothing to do")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        await assemble(settings, stack, poll=True)
        log.info("worker_started", interval=settings.alerts.poll_interval)
        await stop.wait()
        log.info("worker_stopping")


# --- demo / ask -------------------------------------------------------------------------------

async def _demo(args: argparse.Namespace) -> None:
    from adapters.console import Console, ConsoleNotifier, Terminal
    from bot.simulator import run_simulator
    from bot.wiring import assemble

    async with run_simulator(jobs=args.jobs, seed=args.seed, failure_rate=args.failure_rate, speed=60.0) as (sim, url):
        # The embedded default, whatever else this shell has configured; only these carry over.
        kept = {k: v for k, v in os.environ.items() if k in _DEMO_KEEPS}
        env = {"LOG_LEVEL": "WARNING", **kept, "LOG_FORMAT": "console", "RESYNC_POLL_INTERVAL": "20",
               "RESYNC_ALERT_CHANNELS": "console", "RESYNC_ALERT_LANG": args.lang or "en",
               "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync"}
        settings = load_settings(env)
        configure_logging(settings.log, settings.secrets())
        from bot.kb.cli import ingest_samples

        runbooks = await asyncio.to_thread(ingest_samples, settings.kb)
        async with AsyncExitStack() as stack:
            terminal = Terminal()  # one screen for chat and alerts: alerts print above the prompt
            components = await assemble(settings, stack, poll=True, notifiers=[ConsoleNotifier(terminal=terminal)])
            if components.watch is not None:  # the first poll's short summary, then the banner and the prompt
                await components.watch.poll_once()
                await components.watch.deliver_due()
            failed = await components.tws.count_jobs(status="FAILED")
            banner = _DEMO_BANNER_PT if args.lang == "pt" else _DEMO_BANNER
            print(banner.format(url=url, jobs=args.jobs, failed=failed, data=settings.store.data_dir) + runbooks)
            await Console(components.agent.handle, lang=args.lang, terminal=terminal).run()


_DEMO_KEEPS = {"RESYNC_DATA_DIR", "LOG_LEVEL", "LLM_MODEL", "LLM_API_BASE", "LLM_API_KEY", "LLM_TIMEOUT"}

_DEMO_BANNER = """\
Resync demo — chatting with a simulated TWS ({jobs} jobs, {failed} failed so far) at {url}
State is kept in {data}; alerts for new failures appear here. Try:
  which jobs failed?            quais jobs abendaram?
  status EXTRACT01              why did <JOB> fail?
  rerun <JOB from the list>     e o log?
  how do I fix ORA-00060?       o que fazer quando o SFTP falha?
  help                          (quit with Ctrl-D or 'exit'; `resync audit tail` shows what you did)
"""


_DEMO_BANNER_PT = """\
Demo do Resync — conversando com um TWS simulado ({jobs} jobs, {failed} com falha até agora) em {url}
O estado fica em {data}; alertas de novas falhas aparecem aqui. Experimente:
  quais jobs abendaram?         which jobs failed?
  status EXTRACT01              por que o <JOB> falhou?
  roda de novo o <JOB da lista> e o log?
  o que fazer quando o SFTP falha?  how do I fix ORA-00060?
  o que você sabe fazer?        (saia com Ctrl-D ou 'sair'; `resync audit tail` mostra o que você fez)
"""


async def _ask(args: argparse.Namespace) -> int:
    from bot.nlu import understand

    texts = [line.rstrip("\n") for line in sys.stdin if line.strip()] if args.text == ["-"] else [" ".join(args.text)]
    if args.dry_run:
        from bot.config import load_llm_settings

        llm_settings = load_llm_settings()
        caller = None
        if llm_settings is not None:
            from bot.llm import ToolCaller
            from bot.tools import TOOLS

            caller = ToolCaller(llm_settings, tuple(TOOLS.values()))
        for text in texts:
            intent = understand(text)
            if intent.tool is None and caller is not None:
                try:
                    intent = await caller.choose(text, lang=intent.lang)
                except ResyncError:
                    pass
            if args.json:
                print(json.dumps({"tool": intent.tool, "args": dict(intent.args)}, ensure_ascii=False))
            else:
                print(f"{text!r} -> {intent.tool or '(not understood)'} {dict(intent.args) or ''}".rstrip())
        return 0
    from adapters.console import Console
    from bot.wiring import assemble

    settings = _settings()
    if sys.stderr.isatty() and not {"LOG_LEVEL", "LOG_FORMAT"} & set(os.environ):
        # At a terminal, only the answer: start-up events are for logs, shown when asked (LOG_LEVEL).
        configure_logging(replace(settings.log, level="WARNING", format="console"), settings.secrets())
    async with AsyncExitStack() as stack:
        components = await assemble(replace(settings, alerts=replace(settings.alerts, enabled=False)), stack,
                                    poll=False, with_chat=False)
        # A confirmation is answered at the terminal; without one (a pipe) it is declined.
        console = Console(components.agent.handle, read=input if sys.stdin.isatty() else _no_answer)
        failed = False
        for text in texts:
            if args.json:
                replies = await components.agent.handle(console.event(text=text, kind="dm"))
                print(json.dumps({"text": text, "replies": [asdict(r) for r in replies]}, ensure_ascii=False))
            else:
                replies = await console.send(console.event(text=text, kind="dm"))
            failed = failed or any(reply.level == "error" and reply.ephemeral for reply in replies)  # our errors
    return 1 if failed else 0


def _no_answer() -> str:
    raise EOFError


# --- simulator / tws / audit ------------------------------------------------------------------

def _simulator(args: argparse.Namespace) -> None:
    from bot.simulator import main as simulator_main

    simulator_main(host=args.host, port=args.port, jobs=args.jobs, seed=args.seed,
                   failure_rate=args.failure_rate, speed=args.speed, wire=args.wire, log_delay=args.log_delay)


async def _tws_client(stack: AsyncExitStack):  # type: ignore[no-untyped-def]
    from bot.tws.client import TwsClient

    settings = _settings()
    return await stack.enter_async_context(TwsClient(settings.tws))


async def _tws_jobs(args: argparse.Namespace) -> int:
    from bot.tws.models import STATUS_FILTERS

    async with AsyncExitStack() as stack:
        tws = await _tws_client(stack)
        status = (args.status or "").upper()
        if status and status not in STATUS_FILTERS:
            raise ConfigError(f"--status: unknown job status {args.status!r}; use one of {', '.join(sorted(STATUS_FILTERS))}")
        filters = {k: v for k, v in {"status": status, "stream": args.stream, "workstation": args.workstation,
                                     "name": args.name}.items() if v}
        shown = 0
        async for job in tws.iter_jobs(**filters):
            if shown < args.limit:
                rc = "" if job.return_code is None else str(job.return_code)
                print(f"{job.status:<6} {rc:>4}  {job.full_name}  {job.id}")
            shown += 1
        print(f"{shown} job(s)" + (f", first {args.limit} shown" if shown > args.limit else ""))
    return 0


async def _tws_job(args: argparse.Namespace) -> int:
    from bot.errors import AmbiguousJob, JobNotFound
    from bot.tws.names import parse_job_ref

    async with AsyncExitStack() as stack:
        tws = await _tws_client(stack)
        try:
            if _UUID.fullmatch(args.name.strip()):  # an id, as `tws jobs` and candidate lists print it
                job = await tws.get_job(args.name.strip())
            else:
                job = await tws.resolve_job(parse_job_ref(args.name))
        except JobNotFound as exc:
            print(exc)
            return 1
        except AmbiguousJob as exc:
            print(f"{args.name} is ambiguous; candidates:")
            for candidate in exc.candidates:
                print(f"  {candidate.instance_name}  {candidate.status}  {candidate.id}")
            return 1
        for key, value in (("job", job.full_name), ("id", job.id), ("workstation", job.workstation_path),
                           ("status", f"{job.status} ({job.coarse_status})"),
                           ("return code", job.return_code), ("scheduled", job.sched_time), ("started", job.start),
                           ("ended", job.end), ("reruns", job.rerun_count)):
            print(f"{key:>12}: {'' if value is None else value}")
        if args.log:
            print(await _log_tail_text(tws, job))
    return 0


async def _log_tail_text(tws, job) -> str:  # type: ignore[no-untyped-def]
    """The log tail, or one plain line saying why there is none."""
    from bot.errors import LogNotReady, TwsError

    try:
        log = await tws.job_log(job.id, tail=40, run_id=job.run_id)
    except LogNotReady as exc:
        return f"(the log is not available yet: TWS has not retrieved it; try again in a minute — {exc})"
    except TwsError as exc:
        return f"(the log could not be fetched: {exc})"
    if not log.text.strip():
        return "(TWS returned an empty log)"
    return log.text


async def _tws_health(args: argparse.Namespace) -> int:
    from bot.errors import TwsAuthError, TwsUnavailable

    async with AsyncExitStack() as stack:
        tws = await _tws_client(stack)
        try:
            info = await tws.engine_info()
        except TwsAuthError as exc:
            print(str(exc).replace("TWS refused", "TWS is reachable but refused", 1))  # said once, not twice
            return 1
        except TwsUnavailable as exc:
            if exc.answer:  # TWS did answer, with an error: it is reachable
                print(f"TWS answered with an error: {exc.answer} (breaker {tws.breaker_state})")
            else:
                print(f"TWS NOT reachable: {exc} (breaker {tws.breaker_state})")
            return 1
        except ResyncError as exc:
            print(f"TWS answered with an error: {exc} (breaker {tws.breaker_state})")
            return 1
        print(f"TWS is up: {info.version} {info.engine_type}, time zone {info.timezone}, at {tws.active_url}, "
              f"breaker {tws.breaker_state}")
    return 0


def _store_settings():  # type: ignore[no-untyped-def]
    """The audit commands need only the store slice, not TWS settings."""
    from bot.config import load_store_settings

    return load_store_settings()


async def _digest(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot.alerts import digest
    from bot.store import open_store

    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone: unknown time zone {args.timezone!r} (an IANA name such as America/Sao_Paulo)") from None
    async with open_store(_store_settings()) as store:
        day = await digest.collect(store, now=time.time(), timezone=args.timezone)
    print(digest.as_text(day, lang=args.lang))
    if args.png:
        path = Path(args.png)
        try:
            path.write_bytes(digest.chart_png(day, lang=args.lang))
        except OSError as exc:
            raise ConfigError(f"--png: cannot write {path}: {exc.strerror}") from None
        print(f"\nchart written to {path}")
    return 0


async def _audit_tail(args: argparse.Namespace) -> int:
    from bot import audit
    from bot.store import open_store

    async with open_store(_store_settings()) as store:
        for record in await audit.tail(store, args.n):
            print(json.dumps(record, ensure_ascii=False) if args.json else audit.format_record(record))
    return 0


async def _audit_verify(args: argparse.Namespace) -> int:
    from bot import audit
    from bot.store import open_store

    async with open_store(_store_settings()) as store:
        texts = await store.read_log_text("audit")
        persistence = await store.persistence() if store.kind == "redis" else "a file"  # type: ignore[attr-defined]
    records, problems = audit.verify_stored(texts)
    if persistence == "":
        print("WARNING: this Redis keeps no AOF or RDB snapshots: a restart empties the audit log, and an empty "
              "or shorter log verifies as intact. Compare the count and the last hash with your log archive.")
    # The chain cannot tell that it was cut short: say where it starts and how long it is, so a
    # truncation (to zero, after a Redis restart without persistence) shows.
    if records:
        first, last = records[0], records[-1]
        print(f"first record: #{first.get('seq')} at {first.get('ts')} [{str(first.get('hash'))[:12]}]; "
              f"last record: #{last.get('seq')} at {last.get('ts')} [{str(last.get('hash'))[:12]}]")
    else:
        print("the audit log is EMPTY: no record at all (if actions were ever taken here, the log was lost)")
    if not problems:
        print(f"audit log intact: {len(texts)} record(s), hash chain verified")
        return 0
    for problem in problems:
        where = f"record #{problem.seq}" if problem.seq is not None else "log"
        print(f"TAMPERED {where}: {problem.kind}: {problem.detail}")
    return 1


# --- teams ---------------------------------------------------------------------------------------

async def _teams_conversations(args: argparse.Namespace) -> int:
    from adapters.teams_conversations import format_conversation, list_conversations
    from bot.store import open_store

    async with open_store(_store_settings()) as store:
        conversations = await list_conversations(store)
    for conversation in conversations:
        print(json.dumps(conversation.as_json(), ensure_ascii=False) if args.json else format_conversation(conversation))
    if not conversations and not args.json:
        print("no Teams conversation stored yet: install the bot in a team or chat, or message it once", file=sys.stderr)
    return 0


def _teams_package(args: argparse.Namespace) -> int:
    from adapters.teams_package import write_package
    from bot.config import load_teams_settings

    settings = load_teams_settings(for_package=True)  # a package needs the app id, no secret
    if settings is None:
        raise ConfigError("MicrosoftAppId is required: the package names the bot by its Azure app id")
    path = write_package(settings, args.out)
    print(f"wrote {path}: upload it in Teams (Apps > Manage your apps > Upload an app)")
    return 0
