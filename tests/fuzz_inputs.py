"""Hypothesis strategies for malformed requests, shared by tests/test_fuzz.py (CI budget) and
bench/fuzz.py (long runs): JSON of every shape, wrongly typed fields, lone surrogates, deep nesting,
truncated and binary bodies, odd methods, paths, queries and headers."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from bot.events import (
    ACTION_ALERT_ACK, ACTION_ALERT_LOG, ACTION_ALERT_RERUN, ACTION_CANCEL, ACTION_CHOOSE, ACTION_CONFIRM,
)

COMMANDS = ["status EXTRACT01", "which jobs failed?", "quais jobs abendaram?", "rerun EXTRACT01", "log LOAD02",
            "hold X", "cancel CPU1#PAYROLL_DAILY.EXTRACT01", "jobs ABEND stream PAYROLL_DAILY", "help", "health",
            "e o log?", "rerun it", "stream PAYROLL_DAILY", "why did EXTRACT01 fail?", "status @#@.@", "rerun *"]
ACTION_IDS = [ACTION_CONFIRM, ACTION_CANCEL, ACTION_CHOOSE, ACTION_ALERT_RERUN, ACTION_ALERT_LOG, ACTION_ALERT_ACK]
SURROGATES = ['"\\ud800"', '"\\udfff"', '"a\\ud83d"', '"\\ud83d\\ude00"', '"\\u0000"']

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=50))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
strings = st.one_of(st.text(max_size=300), st.text(alphabet=st.characters(codec="utf-8"), max_size=30))


def field(common: list[str]) -> st.SearchStrategy[object]:
    return st.one_of(st.sampled_from(common), strings, json_values)


chat_bodies = st.fixed_dictionaries({}, optional={
    "user": field(["ana", "U0OPS", "console:operator", ""]),
    "text": field(COMMANDS),
    "conversation": field(["ticket-42", "c", ""]),
    "action_id": field(ACTION_IDS),
    "action_value": field(["0" * 32, '{"tool": "rerun_job", "job_id": "x"}', "[" * 300]),
    "lang": field(["en", "pt", "es"]),
}).map(lambda body: {"user": "ana", **body} if "user" not in body and len(body) % 2 else body)


def _with_surrogate(body: dict[str, object], key: str, escape: str) -> bytes:
    text = json.dumps({**body, key: "__S__"})
    return text.replace('"__S__"', escape).encode()


raw_chat_bodies = st.one_of(
    chat_bodies.map(lambda b: json.dumps(b).encode()),
    chat_bodies.map(lambda b: json.dumps(b, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.builds(_with_surrogate, chat_bodies, st.sampled_from(["user", "conversation", "text", "action_value", "lang"]),
              st.sampled_from(SURROGATES)),
    st.integers(1, 5000).map(lambda n: ("[" * n + "]" * n).encode()),
    st.integers(1, 3000).map(lambda n: ('{"user": "ana", "text": ' + '{"a":' * n + "1" + "}" * n + "}").encode()),
    st.integers(1, 3000).map(lambda n: ('{"user": "ana", "action_id": "resync_choose", "action_value": "'
                                        + "[" * n + '"}').encode()),
    chat_bodies.flatmap(lambda b: st.integers(0, len(json.dumps(b))).map(lambda cut: json.dumps(b).encode()[:cut])),
    st.binary(max_size=600),
)

TOKEN = "fuzz-test-token-1234"
auth_headers = st.sampled_from([{"Authorization": f"Bearer {TOKEN}"}] * 6 + [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"bearer {TOKEN}"}, {"Authorization": "Basic eDp5"},
    {"Authorization": "Bearer " + "é" * 10}])
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "application/json; charset=latin-1", "multipart/form-data; boundary=x", ""])
paths = st.one_of(st.sampled_from(["/healthz", "/readyz", "/metrics", "/api/chat", "/", "/slack/events",
                                   "/api/chat/", "/metrics/x", "/%00", "/..%2f..%2fetc"]),
                  st.text(alphabet="abcdefghijklmnopqrstuvwxyz/%.-_0123456789", max_size=40).map(lambda p: "/" + p))
queries = st.one_of(st.just(""), st.text(alphabet="abc=&%;+0123456789", max_size=60).map(lambda q: "?" + q))
methods = st.sampled_from(["GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])

push_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={
        "status": field(["ABEND", "SUCC", "abend", "FAIL", "ABNED"]),
        "id": field(["fc801f78-bcf9-4427-bb28-5b2d0c539bba", "../x"]),
        "job_id": field(["fc801f78-bcf9-4427-bb28-5b2d0c539bba"]),
        "job": field(["CPU1#PAYROLL_DAILY.EXTRACT01", "EXTRACT01", "@#@.@"]),
    }).map(lambda b: json.dumps(b).encode()),
    raw_chat_bodies,
)
