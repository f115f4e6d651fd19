"""The simulated current plan: generated from a seed, moved along by a virtual clock.

Why this shape: 100,000 jobs must start in seconds and answer queries promptly. The plan keeps
one small ``__slots__`` object per job and computes each run's timeline (ready, start, end,
outcome) once, when the run is created or when something upstream changes. A job's state at any
instant is then a handful of comparisons against the virtual clock: nothing ticks, nothing loops
over the plan per second. The past is never rewritten: an action recomputes only runs that have
not started yet.

Every random choice comes from the seed: the structure from one ``random.Random(seed)`` drawn in
a fixed order, per-run facts (duration, outcome, return code) from a hash of (seed, job, run), so
a different ``failure_rate`` changes which jobs fail but not the plan's shape or ids. Ids are a
keyed permutation of (kind, index, run) shaped like uuid4: stable for a seed, free of lookup
tables, and decodable back to the job or run they name.
"""

from __future__ import annotations

import calendar
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import InvalidState, JobNotFound
from bot.simulator import stdlist
from bot.simulator.catalog import INSTANCE_SUFFIXES, TEMPLATES, Template, job_kind

INF = math.inf
PLAN_START = float(calendar.timegm((2026, 11, 21, 0, 0, 0)))
PLAN_LENGTH = 86_400.0
#: The virtual clock starts at 03:00, in the middle of the night batch.
CLOCK_START = PLAN_START + 3 * 3600

FAILED = frozenset({"ABEND", "FAIL", "ERROR"})
WINDOW_SHARE = 0.05  # the share of jobs with a latest start and a deadline
_RELEASING = frozenset({"SUCC", "CANCL"})  # outcomes that satisfy a successor's dependency
KILL_RC = 137  # 128 + SIGKILL: what a killed Unix job reports

# conman's rules (docs/tws-wire.md): the states each job action is allowed from.
JOB_ACTIONS: dict[str, frozenset[str]] = {
    "rerun": frozenset({"SUCC", "ABEND", "FAIL", "SUPPR", "CANCL"}),
    "hold": frozenset({"SCHED", "HOLD", "READY"}),
    "release": frozenset({"HOLD"}),
    "cancel": frozenset({"SCHED", "HOLD", "READY", "ABEND", "FAIL", "ERROR", "PEND", "SUPPR"}),
    "kill": frozenset({"EXEC"}),
    "confirm-succ": frozenset({"ABEND", "FAIL", "PEND", "EXEC"}),
    "confirm-abend": frozenset({"SUCC", "PEND", "EXEC"}),
}
STREAM_ACTIONS: dict[str, frozenset[str]] = {
    "hold": frozenset({"HOLD", "READY", "EXEC", "STUCK"}),
    "release": frozenset({"HOLD"}),
    "cancel": frozenset({"HOLD", "READY", "EXEC", "STUCK", "ABEND"}),
}

# Salts separating the independent per-run random facts.
_FATE, _FAIL_KIND, _ERROR, _DELAY, _DURATION, _NUMBER, _LOG = range(1, 8)
_WINDOW = 8
_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def hash64(seed: int, index: int, run: int, salt: int) -> int:
    return _mix(_mix(_mix((seed & _M64) ^ salt) ^ index) ^ run)


def unit(seed: int, index: int, run: int, salt: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, job, run, salt)."""
    return (hash64(seed, index, run, salt) >> 11) * (1.0 / (1 << 53))


# --- ids ----------------------------------------------------------------------------------------

KIND_JOB, KIND_STREAM, KIND_RUN, KIND_PLAN = range(4)
_MASK61 = (1 << 61) - 1


class IdCodec:
    """uuid4-shaped ids that are a keyed permutation of (kind, index, run), so they decode back."""

    __slots__ = ("_keys",)

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"resync-simulator-ids:{seed}")
        self._keys = tuple(rng.getrandbits(64) for _ in range(4))

    def encode(self, kind: int, index: int, run: int = 0) -> str:
        left, right = 0, (kind << 44) | (run << 24) | index
        for key in self._keys:
            left, right = right, left ^ (_mix(right ^ key) & _MASK61)
        x = (left << 61) | right
        u = ((x >> 74) << 80) | (4 << 76) | (((x >> 62) & 0xFFF) << 64) | (2 << 62) | (x & ((1 << 62) - 1))
        h = f"{u:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def decode(self, text: str) -> tuple[int, int, int] | None:
        """(kind, index, run), or None when the text is not an id this plan could have issued."""
        h = text.strip().lower().replace("-", "")
        if len(h) != 32:
            return None
        try:
            u = int(h, 16)
        except ValueError:
            return None
        if (u >> 76) & 0xF != 4 or (u >> 62) & 0x3 != 2:
            return None
        x = ((u >> 80) << 74) | (((u >> 64) & 0xFFF) << 62) | (u & ((1 << 62) - 1))
        left, right = x >> 61, x & _MASK61
        for key in reversed(self._keys):
            left, right = right ^ (_mix(left ^ key) & _MASK61), left
        if left or right >> 46:
            return None
        return right >> 44, right & 0xFFFFFF, (right >> 24) & 0xFFFFF


# --- the clock ----------------------------------------------------------------------------------

class Clock:
    """Virtual time: starts at CLOCK_START and runs at ``speed`` times real time (0 stops it)."""

    __slots__ = ("_real0", "_speed", "_offset")

    def __init__(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._real0 = time.monotonic()
        self._speed = speed
        self._offset = CLOCK_START

    def now(self) -> float:
        return self._offset + (time.monotonic() - self._real0) * self._speed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("virtual time only moves forward")
        self._offset += seconds


# --- plan objects -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One run of a job, as its stdlist remembers it."""

    number: int
    start: float
    end: float
    outcome: str
    rc: int | None
    note: str = ""  # "killed", "forced", "confirmed", "cancelled"


class Stream:
    __slots__ = ("index", "name", "template", "workstation", "sched", "jobs", "held", "cancelled")

    def __init__(self, index: int, name: str, template: Template, workstation: str, sched: float) -> None:
        self.index = index
        self.name = name
        self.template = template
        self.workstation = workstation
        self.sched = sched
        self.jobs: list[Job] = []
        self.held = False
        self.cancelled = False


class Job:
    """A job instance: static facts, then the current run's timeline and outcome."""

    __slots__ = ("index", "stream", "name", "preds", "succs", "priority", "confirm", "long",
                 "run", "floor", "held", "free", "ready", "start", "end", "outcome", "rc", "note", "history",
                 "latest_start", "deadline")

    def __init__(self, index: int, stream: Stream, name: str, preds: tuple[Job, ...]) -> None:
        self.index = index
        self.stream = stream
        self.name = name
        self.preds = preds
        self.succs: tuple[Job, ...] = ()
        self.priority = 10
        self.confirm = False  # ends in PEND, waiting for an operator's confirmation
        self.long = False  # a long runner: runs 8x its usual time and turns late
        self.run = 0
        self.floor = stream.sched  # earliest the current run may become ready
        self.held = False  # held by an operator
        self.free = False  # dependencies released by an operator (or a rerun)
        self.ready = self.start = self.end = INF
        self.outcome = "SUCC"
        self.rc: int | None = 0
        self.note = ""
        self.history: tuple[Run, ...] = ()
        self.latest_start: float | None = None  # when the plan wants it started (some jobs only)
        self.deadline: float | None = None  # when the plan wants it finished (some jobs only)

    @property
    def kind(self) -> str:
        return job_kind(self.stream.template.kind, self.name)

    @property
    def label(self) -> str:
        """Conman syntax, ``WS#STREAM.JOB``, for messages."""
        return f"{self.stream.workstation}#{self.stream.name}.{self.name}"

    def current_run(self) -> Run:
        return Run(number=self.run, start=self.start, end=self.end, outcome=self.outcome, rc=self.rc, note=self.note)


def release_time(job: Job) -> float:
    """When ``job`` satisfies its successors: at a good end (SUCC or CANCL), else never."""
    return job.end if job.outcome in _RELEASING else INF


def job_state(job: Job, now: float) -> str:
    if job.end <= now:
        return job.outcome
    if job.start <= now:
        return "EXEC"
    if job.held:
        return "HOLD"
    if job.ready <= now:
        return "READY"
    if job.run == 0 and now < job.stream.sched:
        return "SCHED"
    return "HOLD"


def is_late(job: Job, now: float) -> bool:
    """A long runner is late once it has run twice its usual time."""
    return job.long and job.start <= now < job.end and now - job.start > (job.end - job.start) / 4


def stream_status(stream: Stream, now: float) -> str:
    states = [job_state(j, now) for j in stream.jobs]
    if stream.cancelled:
        return "CANCELP" if "EXEC" in states else "CANCL"
    if all(s in _RELEASING for s in states):
        return "SUCC"
    if "EXEC" in states:
        return "EXEC"
    if stream.held:
        return "HOLD"
    if any(s in FAILED for s in states):
        return "STUCK" if any(s in {"HOLD", "SCHED", "READY"} for s in states) else "ABEND"
    if any(s in {"SUCC", "CANCL", "PEND"} for s in states):
        return "EXEC"  # under way, between two jobs
    return "READY" if "READY" in states else "HOLD"


# --- the plan -----------------------------------------------------------------------------------

class Plan:
    """Every job and job stream of one generated plan, and the rules that move them."""

    def __init__(self, *, jobs: int, seed: int, failure_rate: float) -> None:
        if jobs < 1 or jobs >= 1 << 24:
            raise ValueError("jobs must be between 1 and 16,777,215")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        self.seed = seed
        self.failure_rate = failure_rate
        # A rerun fixes most failures, but the cause often persists (a locked account, a full disk).
        self.rerun_failure = 0.0 if failure_rate == 0 else max(0.3, failure_rate)
        self.ids = IdCodec(seed)
        self.plan_id = self.ids.encode(KIND_PLAN, 0)
        self.streams: list[Stream] = []
        self.jobs: list[Job] = []
        self._generate(jobs, random.Random(seed))
        for job in self.jobs:  # indices are topological: predecessors always come first
            self._new_fate(job)
            self._schedule(job, -INF)
            self._window(job)

    # --- generation -----------------------------------------------------------------------------

    def _generate(self, total: int, rng: random.Random) -> None:
        specs: list[tuple[float, str, Template, str, int, int]] = []
        instances: Counter[str] = Counter()
        placed = 0
        while placed < total:
            template = rng.choice(TEMPLATES)
            count = min(rng.randint(3, 15), total - placed)
            fan = rng.randint(2, min(4, count - 2)) if count >= 5 and rng.random() < 0.25 else 0
            specs.append((_sched_time(rng), _instance_name(template.name, instances[template.name]), template,
                          rng.choice(template.workstations), count, fan))
            instances[template.name] += 1
            placed += count
        specs.sort(key=lambda spec: (spec[0], spec[1]))
        names: dict[str, str] = {}
        for index, (sched, name, template, workstation, count, fan) in enumerate(specs):
            stream = Stream(index, name, template, workstation, sched)
            self.streams.append(stream)
            self._add_jobs(stream, count, fan, rng, names)

    def _add_jobs(self, stream: Stream, count: int, fan: int, rng: random.Random, names: dict[str, str]) -> None:
        base = stream.template.jobs
        for pos in range(count):
            name = base[pos] if pos < len(base) else f"{base[pos % len(base)]}_{pos // len(base) + 1:02d}"
            name = names.setdefault(name, name)  # one string object per distinct name
            job = Job(len(self.jobs), stream, name, self._preds(stream, pos, fan, rng))
            draw = rng.random()
            job.priority = 101 if draw < 0.02 else 50 if draw < 0.12 else 10
            job.confirm = rng.random() < 0.01
            job.long = rng.random() < 0.01
            for pred in job.preds:
                pred.succs = (*pred.succs, job)
            stream.jobs.append(job)
            self.jobs.append(job)

    def _preds(self, stream: Stream, pos: int, fan: int, rng: random.Random) -> tuple[Job, ...]:
        """A chain, with an optional fan: jobs 1..fan run in parallel after job 0, then join."""
        jobs = stream.jobs
        if pos == 0:
            # Some streams wait for the end of an earlier stream (an external follows).
            if stream.index > 10 and rng.random() < 0.08:
                earlier = self.streams[rng.randrange(max(0, stream.index - 200), stream.index)]
                return (earlier.jobs[-1],)
            return ()
        if fan and pos <= fan:
            return (jobs[0],)
        if fan and pos == fan + 1:
            return tuple(jobs[1:fan + 1])
        return (jobs[pos - 1],)

    # --- per-run facts --------------------------------------------------------------------------

    def _unit(self, job: Job, salt: int) -> float:
        return unit(self.seed, job.index, job.run, salt)

    def log_seed(self, job: Job, run: int) -> int:
        return hash64(self.seed, job.index, run, _LOG)

    def job_number(self, job: Job, run: int) -> int:
        return 100_000 + int(unit(self.seed, job.index, run, _NUMBER) * 900_000)

    def _new_fate(self, job: Job) -> None:
        """Decide how the current run will end, before it starts: the simulation is deterministic."""
        fail = self.failure_rate if job.run == 0 else self.rerun_failure
        if self._unit(job, _FATE) >= fail:
            job.outcome, job.rc = ("PEND" if job.confirm else "SUCC"), 0
        elif job.run == 0 and self._unit(job, _FAIL_KIND) < 0.1:
            job.outcome, job.rc = "FAIL", None  # could not even be launched
        else:
            job.outcome, job.rc = "ABEND", stdlist.error_for(job.kind, self._unit(job, _ERROR)).rc

    def _duration(self, job: Job) -> float:
        """Mostly a few minutes, sometimes most of an hour; long runners take eight times more.
        A job that cannot even connect fails within seconds."""
        if job.outcome == "ABEND" and stdlist.error_for(job.kind, self._unit(job, _ERROR)).early:
            return 5.0 + 40.0 * self._unit(job, _DURATION)
        seconds = min(20.0 - 240.0 * math.log(1.0 - self._unit(job, _DURATION)), 3600.0)
        return seconds * (8 if job.long else 1)

    def _schedule(self, job: Job, not_before: float) -> None:
        """(Re)compute when the current run becomes ready, starts and ends."""
        deps = 0.0 if job.free else max((release_time(p) for p in job.preds), default=0.0)
        job.ready = max(job.floor, deps, not_before)
        if job.held or job.ready == INF:
            job.start = job.end = INF
            return
        job.start = job.ready + 2.0 + 28.0 * self._unit(job, _DELAY)
        job.end = job.start if job.outcome == "FAIL" else job.start + self._duration(job)

    def _window(self, job: Job) -> None:
        """Give some jobs (one in twenty, and every long runner) a latest start and a deadline, as an
        operator sets them in the plan: from the first schedule, with a margin; a job whose first
        schedule is blocked gets them from its stream's schedule time."""
        if not job.long and self._unit(job, _WINDOW) >= WINDOW_SHARE:
            return
        if math.isinf(job.start) or math.isinf(job.end):
            job.latest_start, job.deadline = job.stream.sched + 3600.0, job.stream.sched + 7200.0
        elif job.long:  # its deadline passes while it runs: twice its usual time
            job.latest_start, job.deadline = job.start + 600.0, job.start + 2 * (job.end - job.start) / 8 + 60.0
        else:
            job.latest_start, job.deadline = job.start + 600.0, job.end + 1800.0

    def _propagate(self, job: Job, now: float) -> None:
        """Reschedule the successors that have not started yet; stop where nothing changed."""
        todo = list(job.succs)
        while todo:
            succ = todo.pop()
            if succ.start <= now or succ.end <= now:
                continue  # launched or finished: its history stands
            before = (succ.start, succ.end)
            self._schedule(succ, now)
            if (succ.start, succ.end) != before:
                todo.extend(succ.succs)

    # --- lookups --------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        decoded = self.ids.decode(job_id)
        if decoded is None or decoded[0] != KIND_JOB or decoded[1] >= len(self.jobs):
            raise JobNotFound(f"AWSBIO006E The job with id {job_id[:40]!r} was not found in the current plan.")
        return self.jobs[decoded[1]]

    def stream(self, stream_id: str) -> Stream:
        decoded = self.ids.decode(stream_id)
        if decoded is None or decoded[0] != KIND_STREAM or decoded[1] >= len(self.streams):
            raise JobNotFound(f"AWSBIO006E The job stream with id {stream_id[:40]!r} was not found in the plan.")
        return self.streams[decoded[1]]

    def run(self, run_id: str) -> tuple[Job, Run]:
        decoded = self.ids.decode(run_id)
        if decoded is not None and decoded[0] == KIND_RUN and decoded[1] < len(self.jobs):
            job = self.jobs[decoded[1]]
            if decoded[2] == job.run:
                return job, job.current_run()
            if decoded[2] < job.run:
                return job, job.history[decoded[2]]
        raise JobNotFound(f"AWSBIO006E The job run with id {run_id[:40]!r} was not found in the current plan.")

    def job_id(self, job: Job) -> str:
        return self.ids.encode(KIND_JOB, job.index)

    def run_id(self, job: Job, run: int | None = None) -> str:
        return self.ids.encode(KIND_RUN, job.index, job.run if run is None else run)

    def stream_id(self, stream: Stream) -> str:
        return self.ids.encode(KIND_STREAM, stream.index)

    # --- job actions ----------------------------------------------------------------------------

    def job_action(self, job_id: str, action: str, now: float) -> tuple[Job, str]:
        """Apply a conman action; returns the job and its message. Raises JobNotFound/InvalidState."""
        job = self.job(job_id)
        allowed = JOB_ACTIONS.get(action)
        if allowed is None:
            raise InvalidState(f"AWSBIN076E The action {action[:40]!r} is not supported.")
        state = job_state(job, now)
        if state not in allowed:
            raise InvalidState(f"AWSBIN076E The action {action!r} is not allowed for job {job.label}: "
                               f"its status is {state}.")
        _JOB_HANDLERS[action](self, job, now)
        self._propagate(job, now)
        return job, f"{_ACTION_MESSAGES[action]} {job.label}"

    def _rerun(self, job: Job, now: float) -> None:
        job.history = (*job.history, job.current_run())
        job.run += 1
        job.floor, job.free, job.held, job.note = now, True, False, ""
        self._new_fate(job)
        self._schedule(job, now)

    def _hold(self, job: Job, now: float) -> None:
        job.held = True
        self._schedule(job, now)

    def _release(self, job: Job, now: float) -> None:
        if job.held:
            job.held = False
        else:
            job.free = True  # conman's release drops the dependencies the job waits for
        job.floor = max(job.floor, now)
        self._schedule(job, now)

    def _cancel(self, job: Job, now: float) -> None:
        if job.start > now:
            job.start, job.end = INF, now
        job.outcome, job.held, job.note = "CANCL", False, "cancelled"

    def _kill(self, job: Job, now: float) -> None:
        job.end, job.outcome, job.rc, job.note = now, "ABEND", KILL_RC, "killed"

    def _confirm_succ(self, job: Job, now: float) -> None:
        if job.end > now:  # still running: it ends here
            job.end, job.rc = now, 0
        job.outcome, job.note = "SUCC", "confirmed"

    def _confirm_abend(self, job: Job, now: float) -> None:
        if job.end > now:  # still running: it ends here
            job.end = now
        job.outcome, job.rc, job.note = "ABEND", job.rc or 0, "confirmed"

    def force_fail(self, job_id: str, return_code: int, now: float) -> Job:
        """End the current run in ABEND now, whatever its state (a test's lever)."""
        job = self.job(job_id)
        job.start = min(job.start, now)
        job.end = min(job.end, now)
        job.outcome, job.rc, job.held, job.note = "ABEND", return_code, False, "forced"
        self._propagate(job, now)
        return job

    # --- job stream actions ---------------------------------------------------------------------

    def stream_action(self, stream_id: str, action: str, now: float) -> tuple[Stream, str]:
        stream = self.stream(stream_id)
        allowed = STREAM_ACTIONS.get(action)
        if allowed is None:
            raise InvalidState(f"AWSBIN076E The action {action[:40]!r} is not supported for job streams.")
        status = stream_status(stream, now)
        if status not in allowed:
            raise InvalidState(f"AWSBIN076E The action {action!r} is not allowed for job stream "
                               f"{stream.workstation}#{stream.name}: its status is {status}.")
        pending = [j for j in stream.jobs if j.start > now and j.end > now]
        for job in pending:
            if action == "hold":
                job.held = True
            elif action == "cancel":
                self._cancel(job, now)
                continue
            elif stream.held:
                job.held = False
                job.floor = max(job.floor, now)
            else:  # released while waiting for its start time: the time dependency goes
                job.floor = min(job.floor, now)
            self._schedule(job, now)
        stream.held = action == "hold"
        stream.cancelled = stream.cancelled or action == "cancel"
        for job in pending:
            self._propagate(job, now)
        return stream, f"{_ACTION_MESSAGES[action]} {stream.workstation}#{stream.name}"

    # --- reading --------------------------------------------------------------------------------

    def select_jobs(self, keep: Callable[[Job], bool]) -> list[Job]:
        return [job for job in self.jobs if keep(job)]


_JOB_HANDLERS: dict[str, Callable[[Plan, Job, float], None]] = {
    "rerun": Plan._rerun, "hold": Plan._hold, "release": Plan._release, "cancel": Plan._cancel,
    "kill": Plan._kill, "confirm-succ": Plan._confirm_succ, "confirm-abend": Plan._confirm_abend,
}
_ACTION_MESSAGES = {
    "rerun": "AWSBHU611I Rerun submitted for", "hold": "AWSBHU612I Hold submitted for",
    "release": "AWSBHU613I Release submitted for", "cancel": "AWSBHU614I Cancel submitted for",
    "kill": "AWSBHU615I Kill submitted for", "confirm-succ": "AWSBHU616I Confirm SUCC submitted for",
    "confirm-abend": "AWSBHU617I Confirm ABEND submitted for",
}


def _sched_time(rng: random.Random) -> float:
    """Most batch runs at night: 45% between 00:00 and 05:00, 35% after 18:00, the rest by day."""
    draw = rng.random()
    low, high = (0, 300) if draw < 0.45 else (1080, 1440) if draw < 0.80 else (300, 1080)
    step = 15 if rng.random() < 0.7 else 5
    minute = rng.randrange(low, high) // step * step
    return PLAN_START + minute * 60.0


def _instance_name(base: str, instance: int) -> str:
    if instance == 0:
        return base
    if instance <= len(INSTANCE_SUFFIXES):
        return f"{base}_{INSTANCE_SUFFIXES[instance - 1]}"
    return f"{base}_{instance:03d}"
