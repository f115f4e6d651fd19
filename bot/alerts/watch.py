"""``FailureWatch``: finds failed jobs in the plan, follows each failure to its end, and says so once.

One poll (only on the replica holding the leader lock):

1. one filtered query for the failed instances (configured states, plus PEND and late EXEC when
   enabled), every page;
2. ``get_job`` only for open alerts whose job is no longer in that result (to see a rerun start,
   recover, be cancelled or leave the plan);
3. for new and repeat failures: the log tails (error lines, ``DETAIL_CONCURRENCY`` at a time) and
   their successors (blocked count), batched: one query per 40 failures, not one plan scan each
   (the repeats in one batch, the new failures in another).

A failure is keyed by job id and run (``run_id``, else the rerun count): a rerun that fails again
is a repeat failure, posted in the same thread. Only a new run (new run id, higher rerun count) is
a rerun: a failed run seen back in SCHED/HOLD/READY (a restarted TWS replaying its plan) posts
nothing, and failing again in that run is the same failure. State lives in the store, one writer per key, so
restarts and other replicas see it:

    alert:<job id>             the failure record (written by the poll only)
    alertgroup:<group key>     a burst group and its jobs (poll only)
    alertchan1:<channel digest> when recent alerts went out one by one to that channel (flood guard)
    alertchan:<targets digest> the flood message open for a set of targets (poll only)
    alertburst:<stream digest> recent new failures of a stream (and which went out one by one), for
                               burst detection (poll only)
    alertack:<key>             acknowledgement (button); ackclaim:<key>:<run> makes it once
    snooze:<job id>            snooze, with a TTL
    alertact:<job id>          the last rerun/hold/cancel done through the bot (note_action)
    alertref:<thread>:<target> where the root message landed (delivery only)
    alertstate:tws             set while TWS is unreachable or answers polls with an error
    mute:<pattern>             runtime mute, with a TTL
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import structlog

from bot.alerts import compose
from bot.alerts.compose import JSON
from bot.alerts import baseline
from bot.alerts.delivery import Outbox
from bot.alerts.routing import all_targets, route_job
from bot.config import AlertSettings
from bot.errors import JobNotFound, LogNotReady, ResyncError, TwsError, TwsUnavailable
from bot.events import (
    ACTION_ALERT_ACK,
    ACTION_ALERT_SNOOZE_1H,
    ACTION_ALERT_SNOOZE_24H,
    Event,
    Notifier,
    Reply,
    RunbookSearch,
)
from bot.store import Store
from bot.texts import say
from bot.tws.client import TwsClient
from bot.tws.models import WAITING_STATUSES, Job

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.metrics import Metrics

log = structlog.get_logger(__name__)

LOCK = "alerts-poller"
OPEN_TTL = 3 * 86400.0  # longer than a plan: a failure stays known while its job is in the plan
CLOSED_TTL = 86400.0
LOG_TAIL = 40
DETAIL_CONCURRENCY = 8
DELIVERY_INTERVAL = 2.0  # how often delivery looks at the outbox when nothing wakes it
DELIVERY_ROUND = 1  # messages per target per round: a paced channel never holds a round (and the others) up
STOP_GRACE = 0.8  # seconds a send under way may take to finish at shutdown
GROUP_PREFIXES = ("burst:", "flood:", "base:")
INCIDENT_PREFIX = "pagerduty:"  # targets that open incidents (bot.alerts.pagerduty), not chat threads  # threads that are a group of failures, not one
PURGE_EVERY = 600.0  # seconds between two purges of expired keys (SQLite keeps them until then)
CLOSED = {"SUCC": "recovered", "CANCL": "cancelled"}
#: States of a run that has not started: a failed run seen in one again has gone back, not moved on.
WAITING = frozenset({"SCHED", "HOLD", "READY", "INTRO", "ADD", "WAIT", "BOUND"})
LABEL_OF_STATE = {"recovered": "RECOVERED", "cancelled": "CANCELLED", "gone": "GONE"}
_SIGNAL_OF = {"RECOVERED": "resolve", "CANCELLED": "resolve", "GONE": "resolve"}  # for incident targets



@dataclass(frozen=True, slots=True, kw_only=True)
class PollReport:
    """What one poll saw and did; the bench and the health endpoint print it."""

    leader: bool
    tws_ok: bool = True
    failed: int = 0  # failed (or PEND / late) instances in the plan
    new: int = 0  # new failures alerted with their own thread
    grouped: int = 0  # new failures folded into a burst message
    repeats: int = 0  # reruns that failed again
    transitions: int = 0  # rerun started, recovered, cancelled, left the plan
    muted: int = 0
    unrouted: int = 0
    followed: int = 0  # get_job calls for open alerts
    queued: int = 0  # outbox items added
    baselined: int = 0  # failures already there on the plan's first poll (summarized, not alerted)
    flooded: int = 0  # new failures folded into a channel's flood message
    plan: str | None = None  # the current plan id
    ms: float = 0.0


class FailureWatch:
    """The alerting loop: detection, routing, lifecycle and noise control over one store."""

    def __init__(self, settings: AlertSettings, *, tws: TwsClient, store: Store, notifiers: Sequence[Notifier],
                 owner: str, single_instance: bool, runbook_search: RunbookSearch | None = None,
                 clock: Callable[[], float] = time.time, metrics: Metrics | None = None) -> None:
        self._settings = settings
        self._lang = settings.lang  # of everything posted in channels; a button's private answer follows the presser
        self._tws = tws
        self._store = store
        self._owner = owner
        self._single_instance = single_instance
        self._runbook_search = runbook_search
        self._clock = clock
        self._metrics = metrics
        self._outbox = Outbox(store, notifiers, render_root=self.render_root, clock=clock, metrics=metrics)
        self._leader: bool | None = None
        self._wake = asyncio.Event()  # set when something was queued: delivery need not wait its interval
        self._delivery: asyncio.Task[None] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self.plan: str | None = None  # the plan id the last poll saw
        self._said_single = False
        # A poll writes outbox items before their records; rendering a root waits for the poll to
        # finish so it never sees half of it. Sending (paced by the platform) holds no poll up.
        self._polling = asyncio.Lock()
        self._delivering = asyncio.Lock()
        self._tally: Counter[str] = Counter()  # what the current poll did
        self._purged_at: float | None = None

    # --- leadership ---------------------------------------------------------------------------

    async def _lead(self) -> bool:
        """Take or renew the leader lock; log when leadership changes hands."""
        if self._single_instance and not self._said_single:
            self._said_single = True
            log.info("alerts_single_instance", store=self._store.kind,
                     note="embedded store: run one Resync instance (set REDIS_URL for several)")
        leader = await self._store.acquire_lock(LOCK, self._owner, self._settings.lock_ttl)
        if leader != self._leader:
            log.info("alerts_leader" if leader else "alerts_follower", owner=self._owner)
        self._leader = leader
        return leader

    def health(self) -> str:
        """For /readyz: this replica's role in alerting."""
        role = {True: "leader", False: "follower", None: "starting"}[self._leader]
        return f"{role}, plan {self.plan}" if self.plan else role

    async def resign(self) -> None:
        """Give the lock up at shutdown so another replica takes over at once."""
        if self._leader:
            await self._store.release_lock(LOCK, self._owner)
            self._leader = False
            log.info("alerts_resigned", owner=self._owner)

    # --- the poll -----------------------------------------------------------------------------

    async def poll_once(self) -> PollReport:
        """Detect new failures and follow open ones; does nothing unless this replica leads."""
        started = time.perf_counter()
        async with self._polling:
            if not await self._lead():
                return PollReport(leader=False)
            self._tally = tally = Counter()
            try:
                jobs = await self._failed_jobs()
            except TwsUnavailable as exc:
                await self._tws_down(exc)
                return PollReport(leader=True, tws_ok=False, queued=tally["queued"],
                                  ms=round((time.perf_counter() - started) * 1000, 1))
            await self._tws_back()
            tally["failed"] = len(jobs)
            plan = self.plan = await self._plan_id(jobs)
            seen = await self._store.get(f"alertplan:{plan}") is not None
            first = not seen and not await self._store.scan("alertplan:")
            await self._examine(jobs, quiet=not seen and self._settings.baseline != "alert", first_start=first)
            if not seen:
                await self._store.put(f"alertplan:{plan}", {"first_seen": self._clock(), "failed": len(jobs)}, OPEN_TTL)
        if tally["queued"]:
            self._wake.set()
        report = PollReport(leader=True, ms=round((time.perf_counter() - started) * 1000, 1), plan=plan, **tally)
        busy = report.new or report.grouped or report.repeats or report.transitions or report.queued
        (log.info if busy else log.debug)("alerts_polled", **{k: v for k, v in _as_dict(report).items() if v})
        return report

    def _kind(self, job: Job) -> str | None:
        """What is wrong with a job, if anything: failed, pend, late (TWS says so, or past its
        deadline), long (running more than ``long_factor`` times its estimated duration)."""
        if job.status in self._settings.states:
            return "failed"
        if job.status == "PEND" and self._settings.notify_pend:
            return "pend"
        if not self._settings.notify_late:
            return None
        now = self._clock()
        if job.status in WAITING:  # not started yet: late once its latest start (or deadline) has passed
            limits = [t for t in (job.latest_start, job.deadline) if t is not None]
            return "late" if limits and min(limits).timestamp() < now else None
        if job.status != "EXEC":
            return None
        if job.start is not None and job.estimated_duration:  # the more telling of the two: it has a Kill button
            if now - job.start.timestamp() > self._settings.long_factor * job.estimated_duration:
                return "long"
        if job.late or (job.deadline is not None and job.deadline.timestamp() < now):
            return "late"
        return None

    async def _failed_jobs(self) -> list[Job]:
        states = list(self._settings.states)
        if self._settings.notify_pend:
            states.append("PEND")
        if self._settings.notify_late:
            states.append("EXEC")
        jobs = [job async for job in self._tws.iter_jobs(status=tuple(dict.fromkeys(states)))]
        if self._settings.notify_late:  # not started by their latest start, or still waiting at their deadline
            now = datetime.fromtimestamp(self._clock(), timezone.utc)
            jobs += [job async for job in self._tws.iter_jobs(status=tuple(sorted(WAITING)), overdue=now)]
        return [job for job in jobs if self._kind(job)]

    async def _plan_id(self, jobs: list[Job]) -> str:
        """The current plan's id: from the engine, else from the jobs; "unknown" when TWS says neither."""
        try:
            info = await self._tws.engine_info()
        except TwsError:
            info = None
        if info is not None and info.plan_id:
            return info.plan_id
        plans = Counter(job.plan_id for job in jobs if job.plan_id)
        return plans.most_common(1)[0][0] if plans else "unknown"

    async def _examine(self, jobs: list[Job], *, quiet: bool = False, first_start: bool = False) -> None:
        """``quiet``: the first poll of a plan; its failures already existed and are summarized."""
        records = {record["job_id"]: record for _, record in await self._store.scan("alert:")}
        mutes = [m["pattern"] for _, m in await self._store.scan("mute:")]
        fresh: list[tuple[Job, str, tuple[str, ...]]] = []
        # Repeats are known before anything is written: their details come in one batch (one
        # successors query for a whole stream failing again) yet each posts where it did before.
        kinds = [(job, self._kind(job) or "failed") for job in jobs]
        again = await self._details([(job, kind) for job, kind in kinds
                                     if job.id in records and _failure_key(job, kind) not in records[job.id]["runs"]])
        for job, kind in kinds:
            record = records.get(job.id)
            if record is None:
                routing = route_job(self._settings, job, mutes)
                if routing.muted:
                    self._tally["muted"] += 1
                elif not routing.targets:
                    self._tally["unrouted"] += 1
                else:
                    fresh.append((job, kind, routing.targets))
            elif _failure_key(job, kind) not in record["runs"]:
                await self._repeat(record, job, kind, again[job.id])
            else:
                await self._observe(record, job)
        if self._tally["unrouted"]:
            log.warning("alerts_unrouted", count=self._tally["unrouted"],
                        hint="set RESYNC_ALERT_CHANNELS or a matching [[alerts.routes]]")
        if quiet:
            await self._baseline(fresh, first_start=first_start)
        else:
            await self._new_failures(fresh)
        seen = {job.id for job in jobs}
        await self._follow([r for r in records.values() if r["state"] == "open" and r["job_id"] not in seen])
        await self._touch([r for r in records.values() if r["state"] == "open" and r["job_id"] in seen])

    # --- new failures -------------------------------------------------------------------------

    async def _new_failures(self, fresh: list[tuple[Job, str, tuple[str, ...]]]) -> None:
        by_stream: dict[tuple[str, tuple[str, ...]], list[tuple[Job, str]]] = {}
        for job, kind, targets in fresh:
            by_stream.setdefault((job.stream_id or job.stream, targets), []).append((job, kind))
        singles: list[tuple[Job, str, tuple[str, ...]]] = []
        for (stream_id, targets), items in by_stream.items():
            group = await self._burst(stream_id, targets, items)
            if group is None:
                singles += [(job, kind, targets) for job, kind in items]
            else:
                await self._grouped(group, items)
        by_targets: dict[tuple[str, ...], list[tuple[Job, str]]] = {}
        for job, kind, targets in singles:
            by_targets.setdefault(targets, []).append((job, kind))
        singles, floods = [], []
        for targets, items in by_targets.items():
            alone, flood = await self._flood_guard(targets, items)
            singles += [(job, kind, targets) for job, kind in alone]
            if flood is not None:
                floods.append((flood, items[len(alone):]))
        details = await self._details([(job, kind) for job, kind, _ in singles])
        for job, kind, targets in singles:
            await self._open(job, kind, targets, details[job.id])
        for flood, rest in floods:  # after the ones alone: the channel reads them first, then the rest
            await self._grouped(flood, rest)
            self._tally["flooded"] += len(rest)
            self._tally["grouped"] -= len(rest)

    async def _flood_guard(self, targets: tuple[str, ...],
                           items: list[tuple[Job, str]]) -> tuple[list[tuple[Job, str]], JSON | None]:
        """Across streams: at most ``channel_burst`` alerts one by one per channel within the burst window.

        Returns the failures that may still go out on their own and, when there are more, the flood
        group the rest join (one message, updated as more arrive, for as long as they keep coming).
        """
        now, window, limit = self._clock(), self._settings.burst_window, self._settings.channel_burst
        key = "alertchan:" + hashlib.sha1(",".join(targets).encode()).hexdigest()[:16]
        state = await self._store.get(key) or {"times": [], "group": None}
        group = await self._store.get(f"alertgroup:{state['group']}") if state.get("group") else None
        # Counted per channel, whatever route sent there: a channel two routes share fills up once.
        channels = {target: "alertchan1:" + hashlib.sha1(target.encode()).hexdigest()[:16] for target in targets}
        times = {target: [t for t in ((await self._store.get(ckey)) or {"times": []})["times"] if now - t < window]
                 for target, ckey in channels.items()}
        room = 0 if group else max(0, min(limit - len(ts) for ts in times.values()))
        alone = items[:room]
        if len(items) > room and group is None:
            group = {"key": f"flood:{hashlib.sha1(f'{key}|{now}'.encode()).hexdigest()[:12]}", "kind": "flood",
                     "stream": ", ".join(targets), "targets": list(targets), "job_ids": [], "earlier": [],
                     "window": window, "opened_at": now, "limit": limit}
            log.warning("alerts_channel_flood", targets=list(targets), limit=limit, window=window)
        for target, ckey in channels.items():
            await self._store.put(ckey, {"times": (times[target] + [now] * len(alone))[-limit:]}, window)
        await self._store.put(key, {"times": [], "group": group["key"] if group else None}, window)
        return alone, (group if len(items) > room else None)

    async def _baseline(self, fresh: list[tuple[Job, str, tuple[str, ...]]], *, first_start: bool) -> None:
        """Failures that were there before this plan was first seen: one summary per route, not one alert each.

        Each gets a quiet record (no thread of its own yet): failing again or an action through the
        bot opens its thread then (``_promote``); its recovery updates the summary's line.
        """
        by_targets: dict[tuple[str, ...], list[tuple[Job, str]]] = {}
        for job, kind, targets in fresh:
            by_targets.setdefault(targets, []).append((job, kind))
        for targets, items in by_targets.items():
            summary = None
            if self._settings.baseline == "summary":
                where = f"{self.plan}|{','.join(targets)}"
                summary = f"base:{hashlib.sha1(where.encode()).hexdigest()[:12]}"
                group = {"key": summary, "kind": "baseline", "targets": list(targets), "first_start": first_start,
                         "job_ids": [job.id for job in baseline.worst_first(items)], "opened_at": self._clock(),
                         "stream": "", "kinds": baseline.kinds_of(items)}
                await self._store.put(f"alertgroup:{summary}", group, OPEN_TTL)
            for job, kind in items:
                record = {**self._record(job, kind, targets, job.id, {}), "quiet": True, "summary": summary}
                await self._save(record)
            if summary is not None:
                for target in targets:
                    if target.startswith(INCIDENT_PREFIX):
                        continue  # a summary of old failures is no incident to page anyone for
                    await self._queue(f"root:{summary}:{target}", op="root", target=target, thread=summary)
            self._tally["baselined"] += len(items)
            log.info("alerts_baselined", targets=list(targets), count=len(items), summary=summary)

    async def _promote(self, record: JSON) -> JSON:
        """A quiet (baselined) failure that someone acts on or that fails again gets its own thread now."""
        if not record.get("quiet"):
            return record
        record = {**record, "quiet": False}
        await self._save(record)
        for target in record["targets"]:
            await self._queue(f"root:{record['thread']}:{target}", op="root", target=target, thread=record["thread"],
                              reply=compose.job_root(record, lang=self._lang))
            if record.get("summary"):
                await self._queue(f"update:{record['summary']}:{target}:promoted:{record['job_id']}", op="update",
                                  target=target, thread=record["summary"])
        log.info("alert_promoted", job=record["failure"]["full_name"])
        return record

    async def _burst(self, stream_id: str, targets: tuple[str, ...],
                     items: list[tuple[Job, str]]) -> JSON | None:
        """The burst group these new failures join, or None when they are few enough to post one by one.

        The failures of the window already posted one by one are remembered too: the group that
        the count crossing the threshold creates lists them as ``earlier``, so the channel reads
        one burst, not a few singles and a group with no link between them.
        """
        now, window, threshold = self._clock(), self._settings.burst_window, self._settings.burst_threshold
        key = "alertburst:" + hashlib.sha1(f"{stream_id}|{','.join(targets)}".encode()).hexdigest()[:16]
        burst = await self._store.get(key) or {"times": [], "group": None}
        times = [t for t in burst["times"] if now - t < window]
        singles = [[t, job_id] for t, job_id in burst.get("singles", ()) if now - t < window]
        group = await self._store.get(f"alertgroup:{burst['group']}") if burst.get("group") else None
        if group is None and len(times) + len(items) > threshold:
            job = items[0][0]
            group = {"key": f"burst:{hashlib.sha1(f'{key}|{now}'.encode()).hexdigest()[:12]}",
                     "stream": f"{job.workstation}#{job.stream}", "targets": list(targets), "job_ids": [],
                     "earlier": list(dict.fromkeys(job_id for _, job_id in singles)), "window": window,
                     "opened_at": now}
        singles = [] if group else (singles + [[now, job.id] for job, _ in items])[-threshold:]
        times = (times + [now] * len(items))[-threshold:]
        await self._store.put(key, {"times": times, "singles": singles, "group": group and group["key"]}, window)
        return group

    async def _grouped(self, group: JSON, items: list[tuple[Job, str]]) -> None:
        """Fold new failures into a burst message: one root listing them, one thread."""
        thread, created = group["key"], not group["job_ids"]
        group["job_ids"] = list(dict.fromkeys(group["job_ids"] + [job.id for job, _ in items]))
        await self._store.put(f"alertgroup:{thread}", group, OPEN_TTL)
        records = [self._record(job, kind, tuple(group["targets"]), thread, {}) for job, kind in items]
        earlier = await self._records(group.get("earlier", ())) if created else []
        for target in group["targets"]:
            await self._queue(f"root:{thread}:{target}", op="root", target=target, thread=thread,
                              reply=compose.group_root(group, records, earlier=earlier, lang=self._lang))
            for record in records if not created and group.get("kind") != "flood" else ():
                # (a flood message only grows: one reply per failure would be the flood again)
                await self._queue(f"reply:{record['job_id']}:{record['failure']['run']}:grouped:{target}",
                                  op="reply", target=target, thread=thread,
                                  reply=compose.new_in_group(record, lang=self._lang))
                await self._queue(f"update:{thread}:{target}:{record['job_id']}:{record['failure']['run']}",
                                  op="update", target=target, thread=thread)
        for record in records:
            await self._save(record)
        self._tally["grouped"] += len(records)
        log.info("alert_burst", group=thread, stream=group["stream"], jobs=len(group["job_ids"]), added=len(items),
                 earlier=len(group.get("earlier", ())))

    async def _records(self, job_ids: Iterable[str]) -> list[JSON]:
        """The stored failure records of these jobs, in order; the ones no longer known left out."""
        return [r for r in await asyncio.gather(*(self._store.get(f"alert:{j}") for j in job_ids)) if r]

    async def _details(self, failures: Sequence[tuple[Job, str]]) -> dict[str, JSON]:
        """Error lines, blocked successors and a runbook hint of new or repeat failures, by job id.

        The successors of all of them come in one batched lookup (a query per 40 jobs, not one plan
        scan per job) while the log tails are fetched ``DETAIL_CONCURRENCY`` at a time.
        """
        if not failures:
            return {}
        limit = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def one(job: Job, kind: str) -> tuple[str, JSON]:
            async with limit:
                errors, note = await self._error_lines(job, kind)
                return job.id, {"errors": errors, "log_note": note, "blocked": None,
                                "runbook": await self._runbook(job, errors)}

        blocked, found = await asyncio.gather(self._blocked([job for job, _ in failures]),
                                              asyncio.gather(*(one(job, kind) for job, kind in failures)))
        return {job_id: {**details, "blocked": blocked.get(job_id)} for job_id, details in found}

    async def _error_lines(self, job: Job, kind: str) -> tuple[list[str], JSON | None]:
        """The error lines, and why there are none when the log could not be read (None: it was)."""
        try:
            tail = await self._tws.job_log(job.id, tail=LOG_TAIL, run_id=job.run_id)
        except LogNotReady:
            log.info("alert_log_not_ready", job=job.full_name)
            return [], {"kind": "not_ready"}
        except TwsError as exc:
            log.warning("alert_log_unavailable", job=job.full_name, error=type(exc).__name__)
            return [], {"kind": "unavailable", "reason": str(exc)[:200]}
        # A PEND or late job did not fail, and rc 0 is no failure: only real error lines are worth showing.
        return compose.error_lines(tail.text, only_real=kind != "failed" or job.return_code == 0), None

    async def _blocked(self, jobs: list[Job]) -> dict[str, int]:
        """How many successors each job holds back (not run yet, waiting on it); {} when TWS cannot say."""
        try:
            successors = await self._tws.successors_of(jobs)
        except TwsError as exc:
            log.warning("alert_successors_unavailable", jobs=len(jobs), error=type(exc).__name__)
            return {}
        return {job_id: sum(1 for s in found if s.status in WAITING_STATUSES) for job_id, found in successors.items()}

    async def _runbook(self, job: Job, errors: list[str]) -> str | None:
        if self._runbook_search is None:
            return None
        try:
            from bot.kb.answers import failure_query  # a plain function; no model or Qdrant import

            return await self._runbook_search(failure_query(job.name, job.stream, job.return_code, errors))
        except ResyncError as exc:
            log.warning("alert_runbook_unavailable", job=job.full_name, error=type(exc).__name__)
            return None

    def _record(self, job: Job, kind: str, targets: tuple[str, ...], thread: str, details: JSON) -> JSON:
        snap, now = compose.snapshot(job, now=self._clock(), factor=self._settings.long_factor), self._clock()
        return {"job_id": job.id, "thread": thread, "targets": list(targets), "kind": kind, "state": "open",
                "job": snap, "failure": snap, "runs": [_failure_key(job, kind)], "failures": 1,
                "errors": details.get("errors") or [], "log_note": details.get("log_note"),
                "blocked": details.get("blocked"), "runbook": details.get("runbook"), "opened_at": now,
                "saved_at": now, "plan": job.plan_id or self.plan}

    async def _open(self, job: Job, kind: str, targets: tuple[str, ...], details: JSON) -> None:
        record = self._record(job, kind, targets, job.id, details)
        for target in targets:
            await self._queue(f"root:{job.id}:{target}", op="root", target=target, thread=job.id,
                              reply=compose.job_root(record, lang=self._lang))
        await self._save(record)
        self._tally["new"] += 1
        log.info("alert_raised", job=job.full_name, status=job.status, rc=job.return_code, targets=list(targets))

    # --- lifecycle ----------------------------------------------------------------------------

    async def _repeat(self, record: JSON, job: Job, kind: str, details: JSON) -> None:
        """A later run of an alerted job failed too: same thread, root updated."""
        record = await self._promote(record)
        snap = compose.snapshot(job, now=self._clock(), factor=self._settings.long_factor)
        record = {**record, "state": "open", "kind": kind, "job": snap, "failure": snap,
                  "runs": [*record["runs"], _failure_key(job, kind)][-20:], "failures": record["failures"] + 1,
                  "errors": details["errors"], "log_note": details.get("log_note"), "blocked": details["blocked"],
                  "runbook": details["runbook"] or record.get("runbook")}
        snoozed = await self._store.get(f"snooze:{job.id}") is not None
        event = f"{job.id}:{_failure_key(job, kind)}"
        for target in record["targets"]:
            if not snoozed:
                await self._queue(f"reply:{event}:failed:{target}", op="reply", target=target,
                                  thread=record["thread"], reply=compose.repeat_failure(record, lang=self._lang))
            await self._queue(f"update:{record['thread']}:{target}:{event}:failed", op="update", target=target,
                              thread=record["thread"])
        await self._save(record)
        self._tally["repeats"] += 1
        log.info("alert_repeat_failure", job=job.full_name, status=job.status, run=snap["run"], snoozed=snoozed)

    async def _follow(self, records: list[JSON]) -> None:
        """Look up the open alerts the failed query no longer returns: they moved on.

        A job is taken as gone from the plan only when the plan really changed (another plan id
        than the record's) or when neither its id nor a query by its name finds it: a restarted
        TWS (or simulator) that answers 404 for a moment closes nothing.
        """
        limit = asyncio.Semaphore(DETAIL_CONCURRENCY)
        turnover = [r for r in records if self.plan not in (None, "unknown") and r.get("plan") not in (None, self.plan)]
        records = [r for r in records if r not in turnover]

        async def fetch(record: JSON) -> tuple[JSON, Job | None | TwsError]:
            async with limit:
                try:
                    return record, await self._tws.get_job(record["job_id"])
                except JobNotFound:
                    return record, await self._search(record)
                except TwsError as exc:  # a slow or broken TWS: look again next poll
                    return record, exc

        for record in turnover:
            await self._observe({**record, "gone_why": "plan"}, None)
        if turnover:
            log.info("alerts_plan_turnover", plan=self.plan, closed=len(turnover))

        self._tally["followed"] += len(records)
        for record, job in await asyncio.gather(*(fetch(r) for r in records)):
            if isinstance(job, TwsError):
                log.warning("alert_follow_failed", job=record["failure"]["full_name"], error=type(job).__name__)
            else:
                await self._observe(record, job)

    async def _search(self, record: JSON) -> Job | None | TwsError:
        """The full query after a 404: the job by name, kept only if it is the same instance."""
        failure = record["failure"]
        try:
            found = await self._tws.query_jobs(name=failure["name"], stream=failure["stream"],
                                               workstation=failure["workstation"])
        except TwsError as exc:
            return exc
        return next((job for job in found if job.id == record["job_id"]), None)

    async def _observe(self, record: JSON, job: Job | None) -> None:
        """Compare what TWS says now with the record; post the step in the thread, update the root."""
        before = record["job"]
        if job is None:
            state, snap = "gone", before
        else:
            state, snap = CLOSED.get(job.status, "open"), compose.snapshot(job)
        if state == "open" and snap["status"] in WAITING and before["status"] not in WAITING \
                and not compose.new_run(before, snap):
            await self._regressed(record, snap)
            return
        settled = "regressed" in record  # it came back from a regression: forget the note
        record = {key: value for key, value in record.items() if key != "regressed"}
        if state == record["state"] and snap["status"] == before["status"] and snap["run"] == before["run"]:
            if settled:
                await self._save(record)
            return
        if state != "open" and record["state"] == "open":
            record = {**record, "closed_at": self._clock()}  # time to recover, in the digest
        record = {**record, "state": state, "job": snap}
        label = LABEL_OF_STATE.get(state)
        failure = record["failure"]
        if label is None and compose.new_run(failure, snap) and not compose.new_run(failure, before):
            label = "RERUNNING"
        elif label is None and record["kind"] == "late" and before["status"] in WAITING and snap["status"] == "EXEC":
            label = "STARTED"  # late to start, under way now: said once; it closes when it finishes
        event = f"{record['job_id']}:{snap['run']}:{snap['status']}:{state}"
        quiet = bool(record.get("quiet"))
        announce = label is not None and not quiet and await self._worth_announcing(record, label)
        thread = record.get("summary") if quiet else record["thread"]
        signal = _SIGNAL_OF.get(label or "")
        for target in record["targets"] if thread else ():
            if announce:
                await self._queue(f"reply:{event}:{target}", op="reply", target=target, thread=thread,
                                  reply=compose.transition(record, label, lang=self._lang))
            if signal and not quiet:
                await self._queue(f"signal:{event}:{target}", op="signal", target=target, thread=thread, signal=signal)
            await self._queue(f"update:{thread}:{target}:{event}", op="update", target=target, thread=thread)
        await self._save(record)
        if label:
            self._tally["transitions"] += 1
            log.info("alert_transition", job=record["failure"]["full_name"], step=label, status=snap["status"])

    async def _regressed(self, record: JSON, snap: JSON) -> None:
        """Back to a waiting state within the run last seen (a restarted or replayed plan): not a rerun.

        Nothing is posted and the root keeps showing the failure, so a failure of this same run later
        is the same failure. Logged once per state it goes back to.
        """
        if record.get("regressed") != snap["status"]:
            log.info("alert_state_regressed", job=record["failure"]["full_name"], status=snap["status"],
                     was=record["job"]["status"], run=snap["run"])
            await self._save({**record, "regressed": snap["status"]})

    async def _worth_announcing(self, record: JSON, label: str) -> bool:
        """Recovery always; a rerun start only when nobody announced it through the bot; quiet when snoozed."""
        if label == "RECOVERED":
            return True
        if await self._store.get(f"snooze:{record['job_id']}") is not None:
            return False
        if label == "RERUNNING":
            action = await self._store.get(f"alertact:{record['job_id']}")
            return not (action and action.get("run") == record["failure"]["run"] and "rerun" in action["tool"])
        return True

    async def _touch(self, records: Iterable[JSON]) -> None:
        """Keep long-standing failures known (their TTL would otherwise run out)."""
        now = self._clock()
        for record in records:
            if now - record.get("saved_at", 0) > OPEN_TTL / 3:
                await self._save(record)

    async def _save(self, record: JSON) -> None:
        record = {**record, "saved_at": self._clock()}
        ttl = OPEN_TTL if record["state"] == "open" else CLOSED_TTL
        await self._store.put(f"alert:{record['job_id']}", record, ttl)

    async def _queue(self, item_id: str, **item: object) -> None:
        # An incident (PagerDuty) takes its root and signals only; a chat thread never takes a signal.
        if (item["op"] == "signal") != str(item["target"]).startswith(INCIDENT_PREFIX) and item["op"] != "root":
            return
        if await self._outbox.add(item_id, **item):  # type: ignore[arg-type]
            self._tally["queued"] += 1

    # --- push from TWS (POST /api/tws/events) ---------------------------------------------------

    async def on_push(self, job: Job) -> str:
        """A job TWS says changed state, as TWS shows it now: alert, follow or close it at once.

        The same steps as a poll, for one job; polling keeps running and reconciles anything a push
        missed. Before this plan's first poll a push runs that poll instead (the baseline applies).
        Returns what happened: "alerted", "repeat", "followed", "muted", "unrouted", "ignored" or "polled".
        """
        async with self._polling:
            known = self.plan is not None and await self._store.get(f"alertplan:{self.plan}") is not None
            if known and job.plan_id not in (None, self.plan):
                known = False  # a push from a plan this process has not polled yet
            if known:
                self._tally = Counter()
                outcome = await self._pushed(job)
        if not known:
            await self.poll_once()
            outcome = "polled"
        self._wake.set()
        log.info("alert_push", job=job.full_name, status=job.status, outcome=outcome)
        return outcome

    async def _pushed(self, job: Job) -> str:
        record, kind = await self._store.get(f"alert:{job.id}"), self._kind(job)
        if record is None:
            if kind is None:
                return "ignored"
            routing = route_job(self._settings, job, [m["pattern"] for _, m in await self._store.scan("mute:")])
            if routing.muted or not routing.targets:
                return "muted" if routing.muted else "unrouted"
            await self._new_failures([(job, kind, routing.targets)])
            return "alerted"
        if kind is not None and _failure_key(job, kind) not in record["runs"]:
            details = await self._details([(job, kind)])
            await self._repeat(record, job, kind, details[job.id])
            return "repeat"
        await self._observe(record, job)
        return "followed"

    # --- TWS outage ---------------------------------------------------------------------------

    async def _tws_down(self, exc: TwsUnavailable) -> None:
        """One notice per outage and target, saying what is true of it.

        ``TwsUnavailable`` also stands for an answer (``exc.answer``): a 5xx with TWS's own message,
        a 429 or a bare 5xx (its status line), or the client's breaker holding requests back after
        such answers. TWS is reachable then, so the notice quotes that answer instead of calling it
        unreachable. What the first failed poll of an outage saw decides its notice (stored with
        it, so a restart or another replica says the same).
        """
        state = await self._store.get("alertstate:tws")
        if state is None:
            answer = compose.quote_answer(exc.answer) if exc.answer else None
            state = {"down_since": self._clock(), "answer": answer}
            await self._store.put("alertstate:tws", state)
            if answer:
                log.warning("alerts_tws_error", answer=answer)
            else:
                log.warning("alerts_tws_unreachable", error=str(exc)[:200])
        since, answer = state["down_since"], state.get("answer")
        reply = (compose.tws_error(since, answer, lang=self._lang) if answer
                 else compose.tws_down(since, lang=self._lang))
        for target in all_targets(self._settings):
            await self._queue(f"notice:tws-down:{since:.6f}:{target}", op="notice", target=target, reply=reply)

    async def _tws_back(self) -> None:
        state = await self._store.get("alertstate:tws")
        if state is None:
            return
        since, answered = state["down_since"], bool(state.get("answer"))
        for target in all_targets(self._settings):
            await self._queue(f"notice:tws-up:{since:.6f}:{target}", op="notice", target=target,
                              reply=compose.tws_up(since, self._clock(), answered=answered, lang=self._lang))
        await self._store.delete("alertstate:tws")
        log.info("alerts_tws_error_cleared" if answered else "alerts_tws_reachable",
                 down_for=round(self._clock() - since, 1))

    # --- delivery -----------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send the outbox items that are due (leader only); return how many reached a platform."""
        async with self._delivering:
            if not await self._lead():
                return 0
            return await self._outbox.deliver_due()

    async def render_root(self, thread: str) -> Reply | None:
        """The root message of a thread as it should look now (None: nothing known about it)."""
        async with self._polling:
            return await self._render_root(thread)

    async def _render_root(self, thread: str) -> Reply | None:
        if thread.startswith(GROUP_PREFIXES):
            group = await self._store.get(f"alertgroup:{thread}")
            if group is None:
                return None
            records, earlier = await self._records(group["job_ids"]), await self._records(group.get("earlier", ()))
            if group.get("kind") == "baseline":
                return baseline.summary(group, records, lang=self._lang)
            ack = await self._store.get(f"alertack:{thread}")
            return compose.group_root({**group, "ack": ack}, records, earlier=earlier, lang=self._lang)
        record = await self._store.get(f"alert:{thread}")
        if record is None:
            return None
        ack, snooze, action = await asyncio.gather(self._store.get(f"alertack:{thread}"),
                                                   self._store.get(f"snooze:{thread}"),
                                                   self._store.get(f"alertact:{thread}"))
        return compose.job_root(record, ack=ack, snooze=snooze, action=action, lang=self._lang)

    # --- buttons and actions ------------------------------------------------------------------

    async def on_action(self, event: Event) -> list[Reply] | None:
        """Acknowledge and snooze buttons of an alert; None for any other action."""
        hours = {ACTION_ALERT_SNOOZE_1H: 1, ACTION_ALERT_SNOOZE_24H: 24}.get(event.action_id or "")
        if event.action_id != ACTION_ALERT_ACK and hours is None:
            return None
        user = event.user_name or event.user_id
        thread = (event.action_value or "").strip()
        lang = event.lang or self._lang  # the presser's own language when the platform knows it
        records = await self._thread_records(thread)
        if not records:
            return [Reply(text=say(lang, "alert_untracked"), ephemeral=True)]
        if hours is None:
            return await self._acknowledge(thread, records, user, lang)
        return await self._snooze(thread, records, user, hours, lang)

    async def _thread_records(self, thread: str) -> list[JSON]:
        if thread.startswith(GROUP_PREFIXES):
            group = await self._store.get(f"alertgroup:{thread}")
            ids = group["job_ids"] if group else []
        else:
            ids = [thread] if thread else []
        return await self._records(ids)

    async def _acknowledge(self, thread: str, records: list[JSON], user: str, lang: str) -> list[Reply]:
        run = records[0]["failure"]["run"] if len(records) == 1 else "group"
        if not await self._store.claim(f"ackclaim:{thread}:{run}", OPEN_TTL):
            ack = await self._store.get(f"alertack:{thread}")
            by = ack["by"] if ack else say(lang, "alert_someone")
            return [Reply(text=say(lang, "alert_already_acked", user=by), ephemeral=True)]
        now = self._clock()
        await self._store.put(f"alertack:{thread}", {"by": user, "at": now, "run": run}, OPEN_TTL)
        for target in records[0]["targets"]:
            await self._queue(f"reply:{thread}:ack:{run}:{target}", op="reply", target=target, thread=thread,
                              reply=compose.acknowledged(user, lang=self._lang))
            await self._queue(f"update:{thread}:{target}:ack:{run}", op="update", target=target, thread=thread)
            await self._queue(f"signal:{thread}:ack:{run}:{target}", op="signal", target=target, thread=thread,
                              signal="acknowledge")
        self._wake.set()
        log.info("alert_acknowledged", thread=thread, user=user)
        if len(records) == 1:
            job = records[0]["failure"]["full_name"]
            return [Reply(text=say(lang, "alert_you_acked_job", job=job), ephemeral=True)]
        return [Reply(text=say(lang, "alert_you_acked_group"), ephemeral=True)]

    async def _snooze(self, thread: str, records: list[JSON], user: str, hours: int, lang: str) -> list[Reply]:
        until = self._clock() + hours * 3600
        for record in records:
            await self._store.put(f"snooze:{record['job_id']}", {"by": user, "until": until}, hours * 3600)
        for target in records[0]["targets"]:
            await self._queue(f"reply:{thread}:snooze:{until:.0f}:{target}", op="reply", target=target,
                              thread=thread, reply=compose.snoozed(user, hours, until, lang=self._lang))
            await self._queue(f"update:{thread}:{target}:snooze:{until:.0f}", op="update", target=target,
                              thread=thread)
        log.info("alert_snoozed", thread=thread, user=user, hours=hours)
        return [Reply(text=say(lang, "alert_you_snoozed", hours=hours), ephemeral=True)]

    async def note_action(self, *, job_id: str, tool: str, actor: str, outcome: str) -> None:
        """Called by the agent core after a rerun/hold/cancel: say it in the alert's thread."""
        record = await self._store.get(f"alert:{job_id}")
        if record is None:
            return
        async with self._polling:
            record = await self._promote(record)
        now = self._clock()
        await self._store.put(f"alertact:{job_id}", {"tool": tool, "actor": actor, "outcome": outcome, "at": now,
                                                     "run": record["failure"]["run"]}, OPEN_TTL)
        for target in record["targets"]:
            note = compose.action_note(tool=tool, actor=actor, outcome=outcome, lang=self._lang)
            await self._queue(f"reply:{job_id}:act:{tool}:{now:.3f}:{target}", op="reply", target=target,
                              thread=record["thread"], reply=note)
            await self._queue(f"update:{record['thread']}:{target}:act:{now:.3f}", op="update", target=target,
                              thread=record["thread"])
        self._wake.set()
        log.info("alert_action_noted", job=record["failure"]["full_name"], tool=tool, actor=actor)

    async def mute(self, pattern: str, *, seconds: float, actor: str) -> None:
        """Swallow new failures of jobs matching ``WS#STREAM.JOB`` pattern ``pattern`` for a while."""
        pattern = pattern.strip().upper()
        await self._store.put(f"mute:{pattern}", {"pattern": pattern, "by": actor,
                                                  "until": self._clock() + seconds}, seconds)
        log.info("alerts_muted", pattern=pattern, seconds=seconds, actor=actor)

    # --- scheduling ---------------------------------------------------------------------------

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        """Poll and renew the lock on the app's scheduler (APScheduler 3.x); deliver in a task of its own.

        Detection never waits for delivery: a poll only queues, and wakes the delivery task, which
        drains the outbox a few messages per channel per round, channels side by side.
        """
        now = datetime.now(timezone.utc)
        self._scheduler = scheduler
        common = {"max_instances": 1, "coalesce": True, "replace_existing": True, "next_run_time": now}
        scheduler.add_job(self._scheduled_poll, "interval", seconds=self._settings.poll_interval,
                          id="alerts-poll", **common)
        scheduler.add_job(self._scheduled_housekeeping, "interval", seconds=max(0.5, self._settings.lock_ttl / 3),
                          id="alerts-housekeeping", **common)
        for index, digest in enumerate(self._settings.digests):
            hour, minute = (int(part) for part in digest.at.split(":"))
            scheduler.add_job(self._scheduled_digest, "cron", hour=hour, minute=minute, timezone=digest.timezone,
                              args=[index], id=f"alerts-digest-{index}", max_instances=1, coalesce=True,
                              replace_existing=True)
        self._delivery = asyncio.get_running_loop().create_task(self._delivery_loop(), name="alerts-delivery")

    async def stop(self) -> None:
        """Stop delivering within ``STOP_GRACE``: the send under way finishes, the rest stays queued."""
        self._outbox.stopping = True
        self._wake.set()
        if self._delivery is not None and not self._delivery.done():
            done, _ = await asyncio.wait({self._delivery}, timeout=STOP_GRACE)
            if not done:
                self._delivery.cancel()
                await asyncio.gather(self._delivery, return_exceptions=True)
                log.warning("alerts_delivery_cut_short", note="a message being sent may be sent again after restart")

    async def _delivery_loop(self) -> None:
        while not self._outbox.stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), DELIVERY_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._outbox.stopping:
                break
            try:
                async with self._delivering:
                    if await self._lead():
                        await self._outbox.deliver_due(per_target=DELIVERY_ROUND)
                        if self._outbox.more:
                            self._wake.set()  # a backlog: go round again at once
                if self._metrics is not None:
                    self._metrics.outbox_depth.set(await self._store.outbox_pending())
            except Exception:  # entry point of the delivery task: log, keep delivering
                log.exception("alerts_delivery_failed")
                await asyncio.sleep(DELIVERY_INTERVAL)

    def wake(self) -> None:
        """Deliver now (something was queued outside a poll)."""
        self._wake.set()

    async def _scheduled_poll(self) -> None:
        try:
            await self.poll_once()
        except Exception:  # entry point: log, keep the schedule alive
            log.exception("alerts_poll_failed")

    async def _scheduled_digest(self, index: int) -> None:
        try:
            await self.send_digest(index)
        except Exception:  # entry point
            log.exception("alerts_digest_failed")

    async def send_digest(self, index: int) -> bool:
        """Post digest ``index`` of ``[[alerts.digests]]`` (leader only, once a day across replicas)."""
        from bot.alerts import digest as digests

        settings = self._settings.digests[index]
        if not await self._lead():
            return False
        day = await digests.collect(self._store, now=self._clock(), timezone=settings.timezone)
        if not await self._store.claim(f"digestsent:{index}:{day.day}", 2 * digests.DAY):
            return False  # another replica (or this one before a restart) sent it
        message = digests.reply(day, lang=self._lang)
        png = digests.chart_png(day, lang=self._lang)
        picture = {"png": base64.b64encode(png).decode("ascii"), "filename": f"resync-digest-{day.day}.png",
                   "title": message.title or ""}
        for target in settings.targets:  # through the outbox: retried, paced, durable like any alert
            await self._outbox.add(f"digest:{index}:{day.day}:{target}", op="notice", target=target, reply=message)
            await self._outbox.add(f"digest:{index}:{day.day}:{target}:chart", op="picture", target=target,
                                   picture=picture)
            log.info("alerts_digest_queued", target=target, day=day.day, failures=day.failures)
        self._wake.set()
        return True

    async def _scheduled_housekeeping(self) -> None:
        try:
            await self.housekeeping()
        except Exception:  # entry point
            log.exception("alerts_housekeeping_failed")

    async def housekeeping(self) -> None:
        """Renew the leader lock between polls (a long poll must not lose it) and purge expired keys."""
        due = self._purged_at is None or time.monotonic() - self._purged_at >= PURGE_EVERY
        was = self._leader
        leader = await self._lead()
        if leader and was is False and self._scheduler is not None:  # took over from a dead leader: poll now
            self._scheduler.modify_job("alerts-poll", next_run_time=datetime.now(timezone.utc))
            self._wake.set()
        if leader and due:
            self._purged_at = time.monotonic()
            purged = await self._store.purge_expired()
            if purged:
                log.info("alerts_store_purged", keys=purged)


def _failure_key(job: Job, kind: str) -> str:
    """One failure = one run in one kind of trouble (a late run that then abends is a second one)."""
    run = compose.run_key(job)
    return run if kind == "failed" else f"{run}:{kind}"


def _as_dict(report: PollReport) -> dict[str, object]:
    return {name: getattr(report, name) for name in PollReport.__slots__}
