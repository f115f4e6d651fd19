"""The calm first start: failures that already existed when a plan was first seen, summed up once.

A first start against a busy plan (2,000 failures in 100,000 jobs) must not post 2,000 alerts: the
watch gives each such failure a quiet record and posts one summary per route instead
(``RESYNC_ALERT_BASELINE=summary``, the default; ``alert`` alerts each as before; ``ignore`` posts
nothing). The summary is a group root rendered from the records, so a baselined job that
recovers shows as recovered in it; one that fails again or that someone acts on gets its full
thread then (``FailureWatch._promote``).

Pure functions of JSON records, like ``compose``.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.alerts.compose import JSON, _EMOJI, _label, _shown
from bot.events import Reply
from bot.texts import say
from bot.tws.models import Job

SUMMARY_LINES = 10  # the worst ten; "which jobs failed?" lists them all

#: How bad a failure is, worst first: could not even launch, abended, error, waiting for an operator, late.
_SEVERITY = {"FAIL": 0, "ABEND": 1, "ERROR": 2, "PEND": 3}


def worst_first(items: Iterable[tuple[Job, str]]) -> list[Job]:
    """Failures before PEND and late jobs, a higher return code first, then the most recent."""
    def key(item: tuple[Job, str]) -> tuple[int, int, float]:
        job, kind = item
        severity = _SEVERITY.get(job.status, 4) if kind != "late" else 5
        ended = job.end.timestamp() if job.end else 0.0
        return severity, -(job.return_code or 0), -ended

    return [job for job, _ in sorted(items, key=key)]


def summary(group: JSON, records: list[JSON], *, lang: str = "en") -> Reply:
    """"43 jobs had already failed when Resync started", the worst first, and how to list them all."""
    still = [r for r in records if r["state"] == "open"]
    count = len(group["job_ids"])
    title = "🗂️ " + say(lang, "alert_baseline_title_start" if group.get("first_start") else "alert_baseline_title_plan",
                       count=count)
    shown = still + [r for r in records if r["state"] != "open"]  # the worst first, the settled last
    lines = [_line(r, lang) for r in shown[:SUMMARY_LINES]]
    if count > SUMMARY_LINES:
        lines.append(say(lang, "alert_group_more", count=count - SUMMARY_LINES))
    text = say(lang, "alert_baseline_text", open=len(still)) + "\n" + "\n".join(lines)
    return Reply(text=text, title=title, level="warning" if still else "success",
                 context=say(lang, "alert_baseline_hint"))


def _line(record: JSON, lang: str) -> str:
    label = _label(record)
    rc = f" rc {record['failure']['rc']}" if record["failure"]["rc"] is not None else ""
    return f"{_EMOJI.get(label, '🔴')} {record['failure']['full_name']} — {_shown(label, lang)}{rc}"
