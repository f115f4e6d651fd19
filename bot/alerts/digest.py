"""The daily digest: the plan day of alerts in one message, with a chart of failures and recoveries per hour.

``[[alerts.digests]]`` (targets, ``at`` local time, ``timezone``) posts it once a day per route,
on the leader, once across replicas and restarts (a claim per digest and day). ``resync digest
[--png PATH]`` prints the same for a terminal and writes the chart.

Everything comes from the failure records the watch keeps (``alert:<job id>``): failures (repeat
failures counted), reruns, recoveries, what is still failing, the time from failure to recovery,
and the job streams that failed most. The chart is rendered headless (matplotlib's Agg backend,
imported only when a chart is drawn).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.alerts.compose import JSON
from bot.events import Field, Reply
from bot.store import Store
from bot.texts import say

DAY = 86400.0
TOP_STREAMS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """One plan day, as the alert records saw it."""

    day: str  # the local date the day ends on, YYYY-MM-DD
    timezone: str
    start: float  # epoch seconds of the window [start, end)
    end: float
    failures: int
    reruns: int
    recoveries: int
    still_failing: int
    recover_median: float | None  # seconds from failure to recovery, median (None: no recovery)
    top_streams: tuple[tuple[str, int], ...]
    failures_by_hour: tuple[int, ...]  # 24 local hours, starting at the window's first hour
    recoveries_by_hour: tuple[int, ...]
    first_hour: int  # local hour of the first bucket


async def collect(store: Store, *, now: float, timezone: str = "UTC") -> Digest:
    """The 24 hours up to ``now`` from the stored failure records."""
    records = [record for _, record in await store.scan("alert:") if isinstance(record, dict) and "failure" in record]
    return summarize(records, now=now, timezone=timezone)


def summarize(records: Sequence[JSON], *, now: float, timezone: str = "UTC") -> Digest:
    zone = ZoneInfo(timezone)
    end = now
    start = end - DAY
    local_start = datetime.fromtimestamp(start, zone).replace(minute=0, second=0, microsecond=0)
    bucket0 = local_start.timestamp()
    failures_by_hour, recoveries_by_hour = [0] * 25, [0] * 25
    failures = reruns = recoveries = still = 0
    streams: Counter[str] = Counter()
    recover_times: list[float] = []
    for record in records:
        opened = float(record.get("opened_at") or 0.0)
        closed = record.get("closed_at")
        recovered = record.get("state") == "recovered"
        in_day = start <= opened < end or (recovered and closed is not None and start <= float(closed) < end)
        if not in_day:
            continue
        count = int(record.get("failures") or 1) if start <= opened < end else 0
        failures += count
        if count:
            failures_by_hour[min(24, int((opened - bucket0) // 3600))] += count
            failure = record["failure"]
            streams[f"{failure.get('workstation', '?')}#{failure.get('stream', '?')}"] += count
        reruns += int((record.get("job") or {}).get("reruns") or 0)
        if recovered and closed is not None and start <= float(closed) < end:
            recoveries += 1
            recoveries_by_hour[min(24, int((float(closed) - bucket0) // 3600))] += 1
            recover_times.append(max(0.0, float(closed) - opened))
        if record.get("state") == "open" and record.get("kind") == "failed":
            still += 1
    hours = 25 if failures_by_hour[24] or recoveries_by_hour[24] else 24
    return Digest(day=datetime.fromtimestamp(end, zone).strftime("%Y-%m-%d"), timezone=timezone, start=start, end=end,
                  failures=failures, reruns=reruns, recoveries=recoveries, still_failing=still,
                  recover_median=statistics.median(recover_times) if recover_times else None,
                  top_streams=tuple(streams.most_common(TOP_STREAMS)),
                  failures_by_hour=tuple(failures_by_hour[:hours]), recoveries_by_hour=tuple(recoveries_by_hour[:hours]),
                  first_hour=local_start.hour)


def _span(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return say(lang, "digest_no_recovery")
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(1, minutes)} min"


def reply(digest: Digest, *, lang: str = "en") -> Reply:
    """The digest as one message."""
    top = "\n".join(f"{index}. {name} — {count}" for index, (name, count) in enumerate(digest.top_streams, 1))
    text = say(lang, "digest_text", failures=digest.failures, recoveries=digest.recoveries,
               still=digest.still_failing)
    if top:
        text += "\n" + say(lang, "digest_top") + "\n" + top
    fields = (Field(label=say(lang, "digest_f_failures"), value=str(digest.failures)),
              Field(label=say(lang, "digest_f_reruns"), value=str(digest.reruns)),
              Field(label=say(lang, "digest_f_recoveries"), value=str(digest.recoveries)),
              Field(label=say(lang, "digest_f_still"), value=str(digest.still_failing)),
              Field(label=say(lang, "digest_f_recover"), value=_span(digest.recover_median, lang)))
    return Reply(title="📊 " + say(lang, "digest_title", day=digest.day, tz=digest.timezone), text=text, fields=fields,
                 level="error" if digest.still_failing else "success")


def as_text(digest: Digest, *, lang: str = "en") -> str:
    """For a terminal (``resync digest``)."""
    message = reply(digest, lang=lang)
    lines = [message.title or "", "", *(f"{f.label:>22}: {f.value}" for f in message.fields), "", message.text, ""]
    peak = max([*digest.failures_by_hour, *digest.recoveries_by_hour, 1])
    lines.append(say(lang, "digest_per_hour"))
    for offset, (failed, recovered) in enumerate(zip(digest.failures_by_hour, digest.recoveries_by_hour)):
        hour = (digest.first_hour + offset) % 24
        bar = "█" * round(20 * failed / peak) + "░" * round(20 * recovered / peak)
        lines.append(f"  {hour:02d}:00 {failed:>4} / {recovered:<4} {bar}")
    return "\n".join(lines)


def chart_png(digest: Digest, *, lang: str = "en") -> bytes:
    """Failures and recoveries per hour, as a PNG, drawn headless."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels = [f"{(digest.first_hour + i) % 24:02d}" for i in range(len(digest.failures_by_hour))]
    positions = range(len(labels))
    figure, axes = pyplot.subplots(figsize=(9, 3.6), dpi=110)
    try:
        axes.bar([p - 0.2 for p in positions], digest.failures_by_hour, width=0.4, color="#d9534f",
                 label=say(lang, "digest_f_failures"))
        axes.bar([p + 0.2 for p in positions], digest.recoveries_by_hour, width=0.4, color="#5cb85c",
                 label=say(lang, "digest_f_recoveries"))
        axes.set_xticks(list(positions), labels, fontsize=8)
        axes.set_xlabel(say(lang, "digest_hour_axis", tz=digest.timezone))
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.set_title(say(lang, "digest_title", day=digest.day, tz=digest.timezone), fontsize=11)
        axes.legend(loc="upper right", fontsize=8)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        pyplot.close(figure)
