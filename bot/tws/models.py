"""Typed, frozen views of TWS plan objects.

The client builds these from the V2 JSON (see ``wire.py`` for the field mapping, which is the one
place where uncertain field names live); nothing else in Resync reads raw TWS JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

#: The ``FAILED`` status group used by queries, tools and alerts.
FAILED_STATES: frozenset[str] = frozenset({"ABEND", "FAIL", "ERROR"})

#: Every internal status a plan job can have (tws-api.md section 7).
JOB_STATES: frozenset[str] = frozenset(
    {
        "ABEND", "FAIL", "ERROR", "ABENP", "SUCCP", "DONE", "EXTRN", "PEND", "CANCL", "EXEC",
        "HOLD", "FENCE", "READY", "SCHED", "INTRO", "ADD", "WAIT", "BOUND", "SUCC", "SUPPR",
    }
)

#: What a job query's ``status`` filter accepts: one internal status or the FAILED group.
STATUS_FILTERS: frozenset[str] = JOB_STATES | {"FAILED"}

#: Every job stream state (tws-api.md section 6).
STREAM_STATES: frozenset[str] = frozenset(
    {"ADD", "ABEND", "CANCELP", "CANCL", "ERROR", "EXEC", "EXTRN", "HOLD", "READY", "STUCK", "SUCC", "SUPPR"}
)

#: A successor in one of these states has not run yet: it waits on its predecessors. The rerun
#: confirmation's "waiting" and an alert's "blocked" count both use it, so the two agree.
WAITING_STATUSES = frozenset({"HOLD", "SCHED", "READY"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """One predecessor of a job: a job (``job_id``/``job_name`` set) or a whole job stream."""

    job_id: str | None
    job_name: str | None
    stream_name: str | None
    satisfied: bool
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One job instance in the current plan."""

    id: str
    name: str
    stream: str
    stream_id: str
    workstation: str  # as operators type it: "AGT01" in the root folder, else "/FOLDER/AGT01"
    status: str  # internalStatus: ABEND, SUCC, EXEC, ...
    coarse_status: str = ""  # DWC status: Error, Successful, Running, ...
    run_id: str | None = None
    return_code: int | None = None
    job_number: int | None = None
    priority: int | None = None
    sched_time: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    rerun_count: int = 0
    late: bool = False
    requires_confirmation: bool = False
    dependencies: tuple[Dependency, ...] = ()
    workstation_path: str = ""  # exactly as the server sent it ("/AGT01", "/ETL/X" or a bare "AGT01")
    plan_id: str | None = None  # the plan this instance belongs to: ids change when the plan does
    deadline: datetime | None = None  # when the plan wants it finished
    latest_start: datetime | None = None  # when it must have started
    estimated_duration: float | None = None  # seconds, as the plan estimates a run

    @property
    def full_name(self) -> str:
        """Conman syntax ``WS#STREAM.JOB``, how operators name a job; pastes back to this instance."""
        return f"{self.workstation}#{self.stream}.{self.name}"

    @property
    def qualified_name(self) -> str:
        """``/FOLDER/WS#STREAM.JOB`` with the workstation's folder path always (for candidate lists)."""
        return f"{self.workstation_path or self.workstation}#{self.stream}.{self.name}"

    @property
    def instance_name(self) -> str:
        """``/FOLDER/WS#STREAM(0600 11/21/26).JOB``: this very instance, when a stream runs several times."""
        sched = self.sched_time.astimezone(timezone.utc).strftime("%H%M %m/%d/%y") if self.sched_time else None
        stream = f"{self.stream}({sched})" if sched else self.stream
        return f"{self.workstation_path or self.workstation}#{stream}.{self.name}"

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATES


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStream:
    """One job stream instance in the current plan."""

    id: str
    name: str
    workstation: str
    status: str
    sched_time: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    job_count: int | None = None
    workstation_path: str = ""

    @property
    def full_name(self) -> str:
        """Conman syntax ``WS#STREAM``; pastes back into ``stream WS#STREAM``."""
        return f"{self.workstation}#{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobLog:
    """A slice of a job's stdlist: the whole log or its tail.

    A ``text/plain`` answer says nothing about the lines before it: then ``total_lines`` and
    ``first_line`` are None (unknown), never a made-up count.
    """

    job_id: str
    run_id: str | None
    text: str
    total_lines: int | None
    first_line: int | None  # 1-based number of the first line in ``text``; None: unknown
    source: str = ""  # which documented form answered (wire.LOG_FORMS)

    @property
    def truncated(self) -> bool:
        """Lines before ``text`` are known to exist (False when unknown or the whole log)."""
        return self.first_line is not None and self.first_line > 1

    @property
    def maybe_truncated(self) -> bool:
        """Whether earlier lines may exist and nobody said how many."""
        return self.first_line is None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineInfo:
    version: str
    engine_type: str
    timezone: str
    license_type: str | None = None
    plan_start: datetime | None = None
    plan_end: datetime | None = None
    master: str | None = None  # the base URL that answered
    plan_id: str | None = None  # the current plan: a new id after the daily plan turnover


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What TWS said after a job or job stream action."""

    action: str
    target_id: str
    messages: tuple[str, ...] = ()
    new_run_id: str | None = None
