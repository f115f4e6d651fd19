"""The resilient TWS client: one pooled aiohttp session, V2 API, typed results.

SKELETON: signatures are the contract other modules code against; bodies are being written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import aiohttp

from bot.config import TwsSettings
from bot.tws.models import ActionResult, EngineInfo, Job, JobLog, JobStream
from bot.tws.names import JobRef

JOB_ACTIONS = ("rerun", "hold", "release", "cancel", "kill", "confirm-succ")
STREAM_ACTIONS = ("hold", "release", "cancel")


class TwsClient:
    """Talks to one TWS master (with backups), translating every failure into bot.errors."""

    def __init__(self, settings: TwsSettings, *, session: aiohttp.ClientSession | None = None) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> TwsClient: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def close(self) -> None: ...

    @property
    def breaker_state(self) -> str:
        """"closed", "open" or "half-open"."""
        raise NotImplementedError

    @property
    def active_url(self) -> str:
        """The base URL that answered last (master or a backup)."""
        raise NotImplementedError

    # --- reads (retried with backoff + full jitter) -----------------------------------------
    async def iter_jobs(self, *, name: str | None = None, stream: str | None = None,
                        workstation: str | None = None, status: str | Iterable[str] | None = None,
                        page_size: int = 500) -> AsyncIterator[Job]:
        """Every matching job in the plan, page by page. ``status`` may be "FAILED" (the group),
        one internal status, or several. Names may use ``@`` or ``*`` wildcards."""
        raise NotImplementedError
        yield  # pragma: no cover

    async def query_jobs(self, **filters: object) -> list[Job]:
        """``iter_jobs`` collected into a list (same filters)."""
        raise NotImplementedError

    async def count_jobs(self, **filters: object) -> int: ...
    async def get_job(self, job_id: str) -> Job: ...
    async def job_log(self, job_id: str, *, tail: int | None = 200) -> JobLog:
        """The last ``tail`` lines of the current run's stdlist (None: the whole log)."""
        raise NotImplementedError

    async def successors(self, job: Job) -> list[Job]:
        """Jobs in the plan that depend on ``job`` (for the downstream impact of a failure)."""
        raise NotImplementedError

    async def query_streams(self, *, name: str | None = None, workstation: str | None = None,
                            status: str | None = None) -> list[JobStream]: ...
    async def get_stream(self, stream_id: str) -> JobStream: ...
    async def engine_info(self) -> EngineInfo: ...

    async def resolve_job(self, ref: JobRef) -> Job:
        """Exactly one plan instance for ``ref``; JobNotFound or AmbiguousJob(candidates) otherwise."""
        raise NotImplementedError

    # --- actions (never retried blindly: OutcomeUnknown when the result is lost) ----------------
    async def job_action(self, job_id: str, action: str) -> ActionResult:
        """One of JOB_ACTIONS on a job instance."""
        raise NotImplementedError

    async def rerun(self, job_id: str) -> ActionResult: ...
    async def hold(self, job_id: str) -> ActionResult: ...
    async def release(self, job_id: str) -> ActionResult: ...
    async def cancel(self, job_id: str) -> ActionResult: ...
    async def stream_action(self, stream_id: str, action: str) -> ActionResult: ...
