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
from typing import TYPE_CHECKING

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.agent import Agent
from bot.alerts import FailureWatch
from bot.config import AlertSettings, Settings
from bot.errors import ConfigError
from bot.events import Notifier
from bot.metrics import Metrics
from bot.policy import load_policy
from bot.store import Store, open_store
from bot.tools import TOOLS
from bot.tws.client import TwsClient

if TYPE_CHECKING:
    from adapters.slack import SlackAdapter

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
    slack: SlackAdapter | None  # when Slack is configured


def _check_targets(alerts: AlertSettings, notifiers: Sequence[Notifier]) -> None:
    """A target no adapter can serve would queue alerts forever: refuse it at start-up."""
    targets = [*alerts.default_targets, *(t for route in alerts.routes for t in route.targets)]
    for target in targets:
        if not any(n.handles(target) for n in notifiers):
            hint = ("set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN)" if target.startswith("slack:")
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
        await asyncio.wait(running, timeout=10)
    scheduler.shutdown(wait=False)


async def assemble(settings: Settings, stack: AsyncExitStack, *, poll: bool, with_slack: bool = True,
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
    slack = None
    all_notifiers = list(notifiers)
    agent = Agent(tws=tws, store=store, policy=policy, settings=settings.policy, llm=llm)
    # The knowledge base costs nothing until used; an existing one is warmed in the background.
    from bot.kb.answers import KnowledgeBase

    kb = KnowledgeBase(settings.kb, llm=settings.llm)
    stack.push_async_callback(kb.close)
    kb.warm()
    agent.hooks = replace(agent.hooks, runbooks=kb)
    if with_slack and settings.slack is not None:
        from adapters.slack import SlackAdapter

        slack = SlackAdapter(settings.slack, handle=agent.handle, store=store)
        stack.push_async_callback(slack.close)
        all_notifiers.append(slack)
    watch = scheduler = None
    if settings.alerts.enabled:
        _check_targets(settings.alerts, all_notifiers)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        watch = FailureWatch(settings.alerts, tws=tws, store=store, notifiers=all_notifiers, owner=owner,
                             single_instance=store.kind != "redis", runbook_search=kb)
        # The watch needs the chat adapters, which need the agent: hook it into the agent last.
        agent.hooks = replace(agent.hooks, alert_actions=watch.on_action, on_job_action=watch.note_action)
        stack.push_async_callback(watch.resign)  # a restarted process need not wait out the lock TTL
        if poll:
            scheduler = AsyncIOScheduler(timezone="UTC")
            watch.schedule(scheduler)
            scheduler.start()
            stack.push_async_callback(_stop_scheduler, scheduler)
            log.info("alerts_poller_started", interval=settings.alerts.poll_interval,
                     targets=len(settings.alerts.default_targets) + len(settings.alerts.routes))
    return Components(settings=settings, store=store, tws=tws, agent=agent, metrics=metrics, watch=watch,
                      scheduler=scheduler, slack=slack)
