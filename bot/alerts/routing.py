"""Where a failure is announced: the routing rules of ``[[alerts.routes]]``, as pure functions.

Semantics (also documented in the package docstring):

* A route matches a job when its ``stream``, ``job`` and ``workstation`` patterns all match
  (case-insensitive globs; ``@`` is the TWS wildcard and means the same as ``*``; a leading ``/``
  of a V2 workstation path is ignored).
* ``match = "first"`` (the default): the first matching route decides. A muting route swallows the
  failure; any other route sends it to its targets.
* ``match = "all"``: every matching route contributes its targets (in route order, without
  duplicates); one matching muting route swallows the failure (mute wins).
* Nothing matches (or there are no routes): the default targets (``RESYNC_ALERT_CHANNELS``).
* A runtime mute (``FailureWatch.mute``, a ``mute:<pattern>`` key with a TTL) swallows every job
  whose ``WS#STREAM.JOB`` name matches its pattern, until it expires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bot.config import AlertRoute, AlertSettings
from bot.tws.models import Job
from bot.tws.names import workstation_matches


@dataclass(frozen=True, slots=True, kw_only=True)
class Routing:
    """The decision for one job: where to post, or why not."""

    targets: tuple[str, ...] = ()
    muted: bool = False


def glob_match(pattern: str, value: str) -> bool:
    """TWS patterns: ``@`` and ``*`` match anything, ``?`` one character, case-insensitive."""
    return fnmatchcase(value.strip("/").upper(), pattern.strip("/").upper().replace("@", "*"))


def route_matches(route: AlertRoute, job: Job) -> bool:
    # A workstation pattern matches by bot.tws.names' rules: "LNX_ETL01" in any folder, "/ETL/@" by path.
    return (glob_match(route.stream, job.stream) and glob_match(route.job, job.name)
            and workstation_matches(route.workstation, job.workstation_path or job.workstation))


def route_job(settings: AlertSettings, job: Job, mutes: Iterable[str] = ()) -> Routing:
    """Apply the runtime mutes, then the routes, then the default targets."""
    if any(glob_match(pattern, job.full_name) for pattern in mutes):
        return Routing(muted=True)
    matching = [route for route in settings.routes if route_matches(route, job)]
    if settings.match == "first":
        matching = matching[:1]
    if any(route.mute for route in matching):
        return Routing(muted=True)
    if not matching:
        return Routing(targets=tuple(settings.default_targets))
    targets: dict[str, None] = {}
    for route in matching:
        targets.update(dict.fromkeys(route.targets))
    return Routing(targets=tuple(targets))


def all_targets(settings: AlertSettings) -> tuple[str, ...]:
    """Every place that gets alerts: where TWS outage notices go."""
    targets = dict.fromkeys(settings.default_targets)
    for route in settings.routes:
        if not route.mute:
            targets.update(dict.fromkeys(route.targets))
    return tuple(targets)
