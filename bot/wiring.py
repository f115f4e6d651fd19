"""Assembling Resync from its settings: every component built once, in one place, in order.

``assemble`` is shared by ``resync serve`` (the web app), ``resync worker`` (alerts only) and
``resync demo`` (console). Resources are entered into the caller's ``AsyncExitStack`` so they
close in reverse order; each component receives only its slice of the settings.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.actions import JobActions
from bot.agent import Agent
from bot.alerts import FailureWatch
from bot.alerts.pagerduty import pagers
from bot.config import AlertSettings, Settings
from bot.errors import ConfigError, ResyncError
from bot.events import ChatAdapter, Handle, Notifier
from bot.journal import ActionJournal, keep_replaying
from bot.metrics import Metrics
from bot.policy import load_policy
from bot.store import Store, open_store
from bot.tools import TOOLS
from bot.tws.client import TwsClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Components:
    settings: Settings
    store: Store
    tws: TwsClient
    agent: Agent
    metrics: Metrics
    watch: FailureWatch | None
    scheduler: AsyncIOScheduler | None
    adapters: tuple[ChatAdapter, ...]  # the chat platforms configured (Slack, Teams), in start order

    def adapter(self, name: str) -> ChatAdapter | None:
        """The configured adapter called ``name`` ("slack", "teams"), if any."""
        return next((a for a in self.adapters if a.name == name), None)


def _check_targets(alerts: AlertSettings, notifiers: Sequence[Notifier]) -> None:
    """A target no adapter can serve would queue alerts forever: refuse it at start-up."""
    targets = [*alerts.default_targets, *(t for route in alerts.routes for t in route.targets)]
    for target in targets:
        if not any(n.handles(target) for n in notifiers):
            hint = ("set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN)" if target.startswith("slack:")
                    else "set MicrosoftAppId and MicrosoftAppPassword" if target.startswith("teams:")
                    else "this target is only served by `resync demo`" if target.startswith("console")
                    else "no adapter for this platform is configured")
            raise ConfigError(f"RESYNC_ALERT_CHANNELS / [[alerts.routes]]: nothing can deliver to {target!r}: {hint}")


async def _stop_scheduler(scheduler: AsyncIOScheduler) -> None:
    """Stop scheduling and let a poll or delivery already running finish (bounded), not die mid-way.

    APScheduler 3's shutdown cancels running coroutine jobs, so pause first, wait, then shut down.
    """
    scheduler.pause()
    # APScheduler 3 runs each coroutine job in a task wrapping ``run_coroutine_job``.
    running = [task for task in asyncio.all_tasks()
               if getattr(task.get_coro(), "__qualname__", "") == "run_coroutine_job"]
    if running:
        await asyncio.wait(running, timeout=STOP_WAIT)
    scheduler.shutdown(wait=False)


#: How often untouched confirmations past their TTL are audited as expired (seconds).
CONFIRM_SWEEP_EVERY = 30.0


async def _sweep(agent: Agent) -> None:
    try:
        await agent.sweep_expired()
    except ResyncError as exc:  # the store is down: the next sweep audits what this one could not
        log.warning("confirm_sweep_failed", error=str(exc))


#: How long shutdown waits for a poll under way (SIGTERM must end the process within 2 s; the
#: outbox is durable and a poll repeated after a restart queues nothing twice).
STOP_WAIT = 0.3


def _chat_adapters(settings: Settings, handle: Handle, store: Store) -> list[ChatAdapter]:
    """One adapter per configured chat platform; each SDK is imported only when it is configured."""
    adapters: list[ChatAdapter] = []
    if settings.slack is not None:
        from adapters.slack import SlackAdapter

        adapters.append(SlackAdapter(settings.slack, handle=handle, store=store))
    if settings.teams is not None:
        from adapters.teams import TeamsAdapter

        adapters.append(TeamsAdapter(settings.teams, handle=handle, store=store))
    return adapters


def _job_actions(settings: Settings, stack: AsyncExitStack, tws: TwsClient, store: Store) -> JobActions:
    """Confirmed actions with their write-ahead journal (RESYNC_DATA_DIR/journal.db), replayed into the store."""
    journal = ActionJournal.open(settings.store.data_dir / "journal.db")
    stack.callback(journal.close)
    replaying = asyncio.get_running_loop().create_task(keep_replaying(journal, store))

    async def stop_replaying() -> None:
        replaying.cancel()
        await asyncio.gather(replaying, return_exceptions=True)

    stack.push_async_callback(stop_replaying)
    return JobActions(tws=tws, store=store, journal=journal)


async def assemble(settings: Settings, stack: AsyncExitStack, *, poll: bool, with_chat: bool = True,
                   notifiers: Sequence[Notifier] = ()) -> Components:
    """Build every component; ``poll`` runs the failure poller (APScheduler) in this process."""
    metrics = Metrics()
    store = await stack.enter_async_context(open_store(settings.store))
    tws = await stack.enter_async_context(TwsClient(settings.tws, observe=metrics.observe_tws))
    metrics.watch_breaker(lambda: tws.breaker_state)
    policy = load_policy(settings.policy.path)
    llm = None
    if settings.llm is not None:
        from bot.llm import ToolCaller

        llm = ToolCaller(settings.llm, tuple(TOOLS.values()))
    agent = Agent(tws=tws, store=store, policy=policy, settings=settings.policy, llm=llm,
                  actions=_job_actions(settings, stack, tws, store))
    agent.hooks = replace(agent.hooks, observe_action=metrics.observe_action)
    # The knowledge base costs nothing until used; an existing one is warmed in the background.
    from bot.kb.answers import KnowledgeBase

    kb = KnowledgeBase(settings.kb, llm=settings.llm)
    stack.push_async_callback(kb.close)
    kb.warm()
    agent.hooks = replace(agent.hooks, runbooks=kb)
    adapters = _chat_adapters(settings, agent.handle, store) if with_chat else []
    for adapter in adapters:
        stack.push_async_callback(adapter.close)
    all_notifiers = [*notifiers, *adapters]
    watch = scheduler = None
    if settings.alerts.enabled:
        owner = f"{socket.gethostname()}:{os.getpid()}"
        all_notifiers += pagers(settings.alerts, stack)
        _check_targets(settings.alerts, all_notifiers)
        watch = FailureWatch(settings.alerts, tws=tws.uncached(), store=store, notifiers=all_notifiers, owner=owner,
                             single_instance=store.kind != "redis", metrics=metrics, runbook_search=kb)
        # The watch needs the chat adapters, which need the agent: hook it into the agent last.
        agent.hooks = replace(agent.hooks, alert_actions=watch.on_action, on_job_action=watch.note_action)
        stack.push_async_callback(watch.resign)  # a restarted process need not wait out the lock TTL
        if poll:
            scheduler = AsyncIOScheduler(timezone="UTC")
            watch.schedule(scheduler)
            stack.push_async_callback(watch.stop)
            scheduler.start()
            stack.push_async_callback(_stop_scheduler, scheduler)
            log.info("alerts_poller_started", interval=settings.alerts.poll_interval,
                     targets=len(settings.alerts.default_targets) + len(settings.alerts.routes))
    if poll:  # confirmations nobody touched are audited as expired (once: the sweep claims each)
        sweeper = AsyncIOScheduler(timezone="UTC")
        sweeper.add_job(_sweep, "interval", args=(agent,), seconds=CONFIRM_SWEEP_EVERY, max_instances=1, coalesce=True)
        sweeper.start()
        stack.push_async_callback(_stop_scheduler, sweeper)
    return Components(settings=settings, store=store, tws=tws, agent=agent, metrics=metrics, watch=watch,
                      scheduler=scheduler, adapters=tuple(adapters))
