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

from collections import Counter
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


def kinds_of(items: Iterable[tuple[Job, str]]) -> dict[str, int]:
    """How many of each kind (failed, pend, late, long) a baseline holds, kept in its group: the
    title says what the plan looked like when Resync first saw it, whatever happens to the jobs later."""
    return dict(Counter(kind for _, kind in items))


def summary(group: JSON, records: list[JSON], *, lang: str = "en") -> Reply:
    """"31 jobs had already failed and 5 needed attention when Resync started", the worst first.

    A baseline holds failures and jobs that only need attention (PEND, late, running long): the title
    counts each for what it is, and its numbers add up to the lines shown plus the "more" line.
    """
    total = len(group["job_ids"])
    failed, attention = _split(group, records, total)
    what = say(lang, "alert_baseline_failed_attention" if failed and attention else
               "alert_baseline_attention" if attention else "alert_baseline_failed", failed=failed, attention=attention)
    title = "🗂️ " + say(lang, "alert_baseline_title_start" if group.get("first_start") else "alert_baseline_title_plan",
                       what=what)
    still = [r for r in records if r["state"] == "open"]
    still_failed = sum(1 for r in still if r["kind"] == "failed")
    shown = still + [r for r in records if r["state"] != "open"]  # the worst first, the settled last
    lines = [_line(r, lang) for r in shown[:SUMMARY_LINES]]
    if total > len(lines):
        lines.append(say(lang, "alert_group_more", count=total - len(lines)))
    mixed = attention or len(still) > still_failed
    text = say(lang, "alert_baseline_text_mixed" if mixed else "alert_baseline_text", open=still_failed,
               attention=len(still) - still_failed)
    return Reply(text=text + "\n" + "\n".join(lines), title=title, level="warning" if still else "success",
                 context=say(lang, "alert_baseline_hint_failures" if attention else "alert_baseline_hint"))


def _split(group: JSON, records: list[JSON], total: int) -> tuple[int, int]:
    """(failed, needing attention) when the baseline was taken; a group stored without its kinds
    (before they were kept) is told apart by its records, a job no longer known counted as failed."""
    kinds = group.get("kinds")
    if kinds is None:
        kinds = {"other": sum(1 for r in records if r["kind"] != "failed")}
    attention = sum(count for kind, count in kinds.items() if kind != "failed")
    return total - attention, attention


def _line(record: JSON, lang: str) -> str:
    label = _label(record)
    rc = f" rc {record['failure']['rc']}" if record["failure"]["rc"] is not None else ""
    return f"{_EMOJI.get(label, '🔴')} {record['failure']['full_name']} — {_shown(label, lang)}{rc}"
