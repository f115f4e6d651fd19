"""Operator job names: ``WS#STREAM.JOB``, ``STREAM.JOB`` or ``JOB`` (conman syntax).

Names are upper case in TWS and matched case-insensitively; ``@`` is the TWS wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import JobNotFound

_NAME = r"[A-Za-z0-9_@*\-]+"
_REF = re.compile(
    rf"^(?:(?P<ws>/?[A-Za-z0-9_@*\-/]+)#)?(?:(?P<stream>{_NAME})\.)?(?P<job>{_NAME})$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    job: str
    stream: str | None = None
    workstation: str | None = None

    def __str__(self) -> str:
        text = self.job
        if self.stream:
            text = f"{self.stream}.{text}"
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
        workstation=ws.strip("/").upper() if ws else None,
    )
