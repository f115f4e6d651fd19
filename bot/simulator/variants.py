"""Wire variants: the alternative shapes the client tolerates, switched on one by one.

By default the simulator serves only what the documentation says (docs/tws-wire.md, shared
tws-api.md): folder-path workstations, no ``runId``, job logs as ``text/plain`` from the V2
filter endpoint or as ``{"log": ...}`` from the V1 path, ``dependencies.jobStreamId``, and errors as
``{"messages": [...], "exceptionName": ...}``. Each variant below is a shape a real server might
use instead, that the client (``bot/tws/wire.py``) also reads; ``--wire a,b`` combines them so the
conformance suite runs every client operation against each.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: name -> what it changes, as the README and docs/tws-wire.md list them.
VARIANTS: dict[str, str] = {
    "bare-names": "workstations are bare names (AGT01), not folder paths (/AGT01), in JSON and in OQL",
    "json-log": "the V2 joblog endpoint answers a JSON page {jobId, totalLines, pageNumber, pageCount, firstLine, "
                "log} instead of text/plain",
    "run-id": "jobs carry a runId; logs are served only at /api/v2/plan/job/run/{runId}/joblog (JSON page)",
    "v1-log": "logs are served only at the V1 path /plan/current/job/{id}/joblog as {\"log\": ...}",
    "no-dep-ids": "dependency objects name their predecessor job by jobName and jobStreamId only, without jobId",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Wire:
    """Which variants are on; all off is the documented wire."""

    bare_names: bool = False
    json_log: bool = False
    run_id: bool = False
    v1_log: bool = False
    no_dep_ids: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name.replace("_", "-") for f in fields(self) if getattr(self, f.name))

    def __str__(self) -> str:
        return ",".join(self.names) or "documented"


def parse_wire(text: str | None) -> Wire:
    """``"bare-names,json-log"`` -> Wire; "", "documented" or None -> the documented wire."""
    chosen = {part.strip().lower() for part in (text or "").split(",") if part.strip()} - {"documented"}
    unknown = chosen - VARIANTS.keys()
    if unknown:
        raise ValueError(f"unknown wire variant(s) {', '.join(sorted(unknown))}; "
                         f"known: documented, {', '.join(VARIANTS)}")
    if {"run-id", "v1-log"} <= chosen:
        raise ValueError("wire variants run-id and v1-log each serve logs at one place only: choose one")
    return Wire(**{name.replace("-", "_"): True for name in chosen})
