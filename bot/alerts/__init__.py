"""Proactive job-failure alerts: detection, routing, threaded lifecycle, noise control, delivery.

``FailureWatch`` (watch.py) is the one object the app builds; it polls TWS on the app's
APScheduler, follows each failure to its end and hands messages to the durable outbox
(delivery.py), which the chat adapters (``Notifier``) drain.

Routing (routing.py), from ``[[alerts.routes]]`` and ``RESYNC_ALERT_CHANNELS``:
  * a route matches when its ``stream``, ``job`` and ``workstation`` globs all match (``@`` = ``*``);
  * ``match = "first"`` (default): the first matching route decides; ``"all"``: the targets of
    every matching route are merged in route order;
  * a matching route with ``mute = true`` swallows the failure (under "all", mute wins);
  * nothing matches, or no routes: the default targets; no default targets: not alerted (a
    warning is logged each poll);
  * a mute (route or runtime ``FailureWatch.mute``) hides a failure, it does not resolve it: a
    job still failed when a runtime mute expires is alerted then.

Lifecycle: one root message per failed job (its thread). Acknowledgement, snooze, actions taken
through the bot (``note_action``), a rerun starting, recovery (SUCC), cancellation and repeat
failures of later runs are posted in the thread, and the root is re-rendered in place (never
when it would look the same). Only a new run (new run id or rerun count) is a rerun; a failed run
seen back in a waiting state with the same run id posts nothing and leaves the root as it is.

Noise control: a failure (job id + run) is alerted once, across restarts and replicas; more than
``burst_threshold`` new failures of one job stream (and target set) within ``burst_window``
become one grouped message that later failures of that stream join while the burst lasts; a
snooze (1 h / 24 h) silences repeat failures and rerun chatter of a job (the root still updates,
the recovery is still posted) and expires on its own.
"""

from __future__ import annotations

from bot.alerts.compose import error_lines
from bot.alerts.routing import Routing, route_job
from bot.alerts.watch import FailureWatch, PollReport

__all__ = ["FailureWatch", "PollReport", "Routing", "error_lines", "route_job"]
