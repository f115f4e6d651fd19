"""The TWS tools the bot can use: one registry shared by commands, rules and the LLM.

SKELETON: the specs are final (their JSON-schema parameters go to the LLM as-is); the runners are
being written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_JOB = {"type": "string", "description": "Job name: JOB, STREAM.JOB or WORKSTATION#STREAM.JOB"}
_STREAM = {"type": "string", "description": "Job stream name"}
_WS = {"type": "string", "description": "Workstation name"}
_STATUS = {"type": "string", "description": "A TWS internal status (ABEND, EXEC, HOLD, SUCC, ...) or FAILED for ABEND|FAIL|ERROR"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema, used as-is for LLM tool-calling
    changes_state: bool = False

    def openai_schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """What a message means: a tool and its arguments (tool None: not understood).

    ``args`` keys are among job, stream, workstation, status, query. ``refers_back`` marks a
    follow-up ("and its log?", "rerun it") whose job comes from the conversation context.
    """

    tool: str | None
    args: dict[str, str] = field(default_factory=dict)
    lang: str = "en"  # "en" or "pt"
    source: str = "rules"  # "command", "rules", "llm", "button"
    refers_back: bool = False
    note: str | None = None  # e.g. why the LLM was skipped


def _params(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False}


def _job_params() -> dict[str, Any]:
    schema = _params(job=_JOB, stream=_STREAM, workstation=_WS)
    schema["required"] = ["job"]
    return schema


TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in (
    ToolSpec(name="job_status", description="Current status of one job in today's plan (return code, times, stream, workstation).",
             parameters=_job_params()),
    ToolSpec(name="list_jobs", description="List jobs in the current plan, filtered by status (FAILED for failures), stream or workstation.",
             parameters=_params(status=_STATUS, stream=_STREAM, workstation=_WS)),
    ToolSpec(name="job_log", description="The end of a job's log (stdlist), with its error lines; use it to explain why a job failed.",
             parameters=_job_params()),
    ToolSpec(name="rerun_job", description="Rerun a job (allowed when it ended SUCC, ABEND, FAIL or SUPPR). Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="hold_job", description="Put a job that has not started on hold. Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="release_job", description="Release a held job. Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="cancel_job", description="Cancel a job that has not finished. Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="stream_status", description="Status of a job stream and a summary of its jobs.",
             parameters={**_params(stream=_STREAM, workstation=_WS), "required": ["stream"]}),
    ToolSpec(name="engine_health", description="Whether TWS is reachable, its version and the state of the connection.",
             parameters=_params()),
    ToolSpec(name="search_runbooks", description="Search the operations runbooks for how to fix a problem.",
             parameters=_params(query={"type": "string", "description": "What to look for (default: the whole message)"})),
    ToolSpec(name="help", description="What the bot can do, with examples.", parameters=_params()),
)}
