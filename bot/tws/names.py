"""Operator job names: ``WS#STREAM.JOB``, ``STREAM.JOB`` or ``JOB`` (conman syntax), and workstations.

Names are upper case in TWS and matched case-insensitively; ``@`` is the TWS wildcard.

Workstations are folder paths in V2 (``/AGT01``, ``/ETL/LNX_ETL01``) [A: event rule filters give
them so], yet operators type ``AGT01``, and some servers answer bare names. So a workstation is
matched by its parts, never by string equality:

* ``AGT01`` (no slash) is the name in any folder, and a bare ``AGT01`` from the server;
* ``/AGT01`` is the root folder's ``AGT01`` (or a bare ``AGT01``: such a server has no folders);
* ``/ETL/LNX_ETL01`` is exactly that path, or a bare ``LNX_ETL01`` from a server whose names carry
  no folder (it cannot say the folder, so the last segment is all there is to match).

When one job stream runs several times in a plan, ``WS#STREAM(0600 11/21/26).JOB`` (conman's
instance syntax [A]) names one instance; candidate lists print that form.

Names are shown the way they are typed: root-folder workstations bare (``AGT01#STREAM.JOB``),
others with their folder path (``/ETL/LNX_ETL01#STREAM.JOB``); ``Job.qualified_name`` always carries
the path, for listing candidates that a bare name would leave ambiguous. Every form printed parses
back (``parse_job_ref``) and matches the same workstation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import fnmatchcase

from bot.errors import JobNotFound

_NAME = r"[A-Za-z0-9_@*\-]+"
_REF = re.compile(
    rf"^(?:(?P<ws>/?[A-Za-z0-9_@*\-]+(?:/[A-Za-z0-9_@*\-]+)*/?)#)?"
    rf"(?:(?P<stream>{_NAME})(?:\(\s*(?P<sched>\d{{4}}(?:\s+\d{{2}}/\d{{2}}/\d{{2}})?)\s*\))?\.)?(?P<job>{_NAME})$"
)
#: conman's job stream instance: ``STREAM(0600 11/21/26)``, the schedule time in the engine's time zone [A].
SCHED_FORMAT = "%H%M %m/%d/%y"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    job: str
    stream: str | None = None
    workstation: str | None = None  # as typed, normalised by ``workstation_key``
    sched: str | None = None  # "0600 11/21/26" or "0600": which instance of the stream

    def __str__(self) -> str:
        text = self.job
        if self.stream:
            text = f"{self.stream}{f'({self.sched})' if self.sched else ''}.{text}"
        if self.workstation:
            text = f"{self.workstation}#{text}"
        return text


def parse_job_ref(text: str) -> JobRef:
    """Split ``WS#STREAM.JOB`` into its parts, upper-cased; raise JobNotFound when malformed."""
    match = _REF.match(text.strip())
    if not match:
        raise JobNotFound(f"'{text.strip()[:80]}' is not a job name (expected WS#STREAM.JOB, STREAM.JOB or JOB)")
    ws = match["ws"]
    return JobRef(
        job=match["job"].upper(),
        stream=match["stream"].upper() if match["stream"] else None,
        workstation=workstation_key(ws) if ws else None,
        sched=" ".join(match["sched"].split()) if match["sched"] else None,
    )


def sched_label(value: datetime | None) -> str | None:
    """A schedule time as conman writes it in an instance name (UTC, the simulator's zone [I])."""
    return value.astimezone(timezone.utc).strftime(SCHED_FORMAT) if value else None


def sched_matches(wanted: str | None, actual: datetime | None) -> bool:
    """Whether a typed ``0600 11/21/26`` (or just ``0600``) names the instance scheduled at ``actual``."""
    if not wanted:
        return True
    label = sched_label(actual)
    return label is not None and (label == wanted or label.split()[0] == wanted)


def workstation_key(text: str) -> str:
    """The canonical form of a typed workstation: upper case, no trailing slash, and a leading one
    when the name has a folder (``etl/lnx_etl01`` -> ``/ETL/LNX_ETL01``; ``AGT01`` stays bare)."""
    value = text.strip().upper().rstrip("/")
    if "/" in value and not value.startswith("/"):
        value = "/" + value
    return value


def workstation_label(path: str) -> str:
    """How to show a workstation the server sent: bare in the root folder, else its folder path."""
    value = str(path or "").strip()
    if value.startswith("/") and value.count("/") == 1:
        return value[1:]
    return value


def workstation_matches(wanted: str, actual: str) -> bool:
    """Whether the workstation the server sent (``/AGT01``, ``/ETL/X`` or bare ``AGT01``) is the one
    an operator typed (``AGT01``, ``/AGT01``, ``/ETL/X``; ``@``/``*`` wildcards allowed)."""
    want = workstation_key(wanted).replace("@", "*")
    got = str(actual or "").strip().upper().rstrip("/")
    if not want.startswith("/"):  # a bare name: the last segment, whatever the folder
        return fnmatchcase(got.rsplit("/", 1)[-1], want)
    if not got.startswith("/"):  # a server without folders: any folder path names it by its last segment
        return fnmatchcase(got, want.rsplit("/", 1)[-1])
    return fnmatchcase(got, want)
