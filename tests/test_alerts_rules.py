"""Alert routing, content and the outbox's delivery rules, against real stores (SQLite and Redis)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bot.alerts import compose
from bot.alerts.delivery import Outbox
from bot.alerts.routing import all_targets, glob_match, route_job
from bot.config import AlertRoute, AlertSettings
from bot.errors import DeliveryError
from bot.events import ACTION_ALERT_ACK, ACTION_ALERT_LOG, ACTION_ALERT_RERUN, Posted, Reply
from bot.store import Store
from bot.tws.models import Job


def make_job(name: str = "EXTRACT01", stream: str = "PAYROLL_DAILY", ws: str = "CPU1", **kw: object) -> Job:
    base: dict[str, object] = {"id": f"id-{ws}-{stream}-{name}", "name": name, "stream": stream,
                               "stream_id": f"s-{stream}", "workstation": ws, "status": "ABEND", "return_code": 8}
    return Job(**{**base, **kw})  # type: ignore[arg-type]


# --- routing ------------------------------------------------------------------------------

ROUTES = (
    AlertRoute(stream="PAYROLL@", targets=("slack:C_PAY",)),
    AlertRoute(job="*TEST*", mute=True, targets=()),
    AlertRoute(workstation="/CPU1", targets=("slack:C_CPU1", "slack:C_PAY")),
)


def test_tws_wildcards_match_case_insensitively() -> None:
    assert glob_match("PAY@", "payroll_daily")
    assert glob_match("/CPU1", "CPU1")
    assert not glob_match("PAY@", "BILLING")
    assert glob_match("CPU?#PAY*.E@", "CPU1#PAYROLL.EXTRACT")


def test_first_match_takes_the_first_route_only() -> None:
    settings = AlertSettings(routes=ROUTES, default_targets=("slack:C_ALL",))
    assert route_job(settings, make_job()).targets == ("slack:C_PAY",)
    assert route_job(settings, make_job(stream="BILLING")).targets == ("slack:C_CPU1", "slack:C_PAY")
    assert route_job(settings, make_job(stream="BILLING", ws="CPU9")).targets == ("slack:C_ALL",)


def test_a_muting_route_swallows_only_when_it_decides() -> None:
    first = AlertSettings(routes=ROUTES, default_targets=("slack:C_ALL",))
    # PAYROLL@ matches first, so the muting route after it is never reached.
    assert route_job(first, make_job(name="MY_TEST_JOB")).targets == ("slack:C_PAY",)
    assert route_job(first, make_job(name="MY_TEST_JOB", stream="BILLING")).muted


def test_all_match_merges_targets_and_mute_wins() -> None:
    settings = AlertSettings(routes=ROUTES, match="all", default_targets=("slack:C_ALL",))
    assert route_job(settings, make_job()).targets == ("slack:C_PAY", "slack:C_CPU1")
    assert route_job(settings, make_job(name="A_TEST")).muted
    assert route_job(settings, make_job(stream="X", ws="CPU2")).targets == ("slack:C_ALL",)


def test_no_routes_means_the_default_targets_and_runtime_mutes_apply_first() -> None:
    settings = AlertSettings(default_targets=("slack:C_ALL",))
    assert route_job(settings, make_job()).targets == ("slack:C_ALL",)
    assert route_job(settings, make_job(), mutes=["CPU1#PAYROLL@.@"]).muted
    assert route_job(AlertSettings(), make_job()).targets == ()
    assert all_targets(AlertSettings(routes=ROUTES, default_targets=("slack:C_ALL",))) == (
        "slack:C_ALL", "slack:C_PAY", "slack:C_CPU1")


# --- content ------------------------------------------------------------------------------

LOG = """\
= JOB       : CPU1#PAYROLL_DAILY[(2200 11/21/26),(PAYROLL_DAILY)].EXTRACT01
= TASK      : /opt/jobs/extract.sh
= AGENT     : CPU1
= Job Number: 123456
Starting extract at 22:00
reading 1200 rows
ORA-01017: invalid username/password; logon denied
retrying in 5s
ORA-12541: TNS:no listener
Connection refused by db01:1521
step 3 done
SQL0911N The current transaction has been rolled back
java.lang.IllegalStateException: pool closed
Error: extract failed
Traceback (most recent call last):
PermissionError: [Errno 13] Permission denied: '/data/out'
= Exit Status : 8
"""


def test_error_lines_keep_the_cause_and_the_exit_status_within_the_limit() -> None:
    lines = compose.error_lines(LOG)
    assert len(lines) == 9  # 8 lines and the "…" between the first and the last ones
    assert lines[0].startswith("ORA-01017") and lines[-1] == "= Exit Status : 8"
    assert "…" in lines
    assert not any(line.startswith("= JOB") or "reading" in line for line in lines)


def test_error_lines_fall_back_to_the_last_lines_when_nothing_matches() -> None:
    assert compose.error_lines("= JOB : X\nhello\nworld\n") == ["hello", "world"]
    assert compose.error_lines("") == []


FOOTER = """\
===============================================================
= Exit Status : {rc}
= Elapsed Time (hh:mm:ss) : 00:00:21
= Job CPU usage (ms) : 880158
= Sat Nov 21 00:31:24 UTC 2026
===============================================================
"""


def test_the_footer_alone_is_never_an_error_line() -> None:
    quiet = "= JOB : X\nLote 1/12: 188336 registros lidos\nconcluido com sucesso\n" + FOOTER.format(rc=0)
    assert compose.error_lines(quiet) == []  # exit status 0: not "= Exit Status : 0", not the last lines
    assert compose.error_lines(quiet.replace("concluido", "ORA-00942: table not found; concluido")) == [
        "ORA-00942: table not found; concluido com sucesso"]  # real error lines, without the clean footer
    failed = quiet.replace(FOOTER.format(rc=0), FOOTER.format(rc=8))
    assert compose.error_lines(failed) == ["= Exit Status : 8"]
    assert compose.error_lines(failed, only_real=True) == []  # a PEND job: real error lines or none
    assert compose.error_lines("= JOB : X\nhello\n==> step 2\n") == ["hello", "==> step 2"]


def test_a_pend_root_has_no_error_block_and_a_run_gone_back_is_no_rerun() -> None:
    pend = compose.job_root(failure_record("PEND", kind="pend", errors=[]))
    assert pend.code is None and pend.code_title is None
    record = failure_record()
    back = {**record["job"], "status": "SCHED"}  # same run id, same rerun count
    assert not compose.new_run(record["failure"], back)
    assert compose.job_root({**record, "job": back}).title == "🔴 ABEND: CPU1#PAYROLL_DAILY.EXTRACT01"
    rerun = {**record["job"], "status": "SCHED", "run": "r2", "reruns": 1}
    assert compose.new_run(record["failure"], rerun) and compose.new_run(record["failure"], {**back, "reruns": 1})
    assert compose.job_root({**record, "job": rerun}).title.startswith("🔁 RERUNNING")


def test_a_failure_root_carries_facts_error_lines_and_buttons() -> None:
    job = make_job(start=datetime(2026, 11, 21, 22, 0, tzinfo=timezone.utc), rerun_count=0, run_id="r1")
    snap = compose.snapshot(job)
    record = {"job_id": job.id, "thread": job.id, "targets": ["slack:C"], "kind": "failed", "state": "open",
              "job": snap, "failure": snap, "runs": ["r1"], "failures": 1, "errors": ["ORA-01017: denied"],
              "blocked": 3, "runbook": "Reset the DB password (RB-12)"}
    reply = compose.job_root(record)
    assert reply.title == "🔴 ABEND: CPU1#PAYROLL_DAILY.EXTRACT01"
    fields = {f.label: f.value for f in reply.fields}
    assert fields["Return code"] == "8" and fields["Blocked successors"] == "3"
    assert fields["Started"] == "2026-11-21 22:00:00 UTC"
    assert reply.code == "ORA-01017: denied" and "RB-12" in reply.text
    assert [b.action_id for b in reply.buttons][:3] == [ACTION_ALERT_RERUN, ACTION_ALERT_LOG, ACTION_ALERT_ACK]
    acked = compose.job_root(record, ack={"by": "ana", "at": 0.0, "run": "r1"})
    assert "Acknowledged by ana" in (acked.context or "")
    assert ACTION_ALERT_ACK not in [b.action_id for b in acked.buttons]
    recovered = compose.job_root({**record, "state": "recovered", "job": {**snap, "status": "SUCC", "run": "r2"}})
    assert recovered.title.startswith("✅ RECOVERED") and [b.action_id for b in recovered.buttons] == [ACTION_ALERT_LOG]
    assert compose.reply_from_json(compose.reply_to_json(reply)) == reply


def failure_record(status: str = "ABEND", **values: object) -> dict[str, Any]:
    job = make_job(start=datetime(2026, 11, 21, 22, 0, tzinfo=timezone.utc), rerun_count=0, run_id="r1",
                   return_code=12, status=status)
    snap = compose.snapshot(job)
    return {"job_id": job.id, "thread": job.id, "targets": ["slack:C"], "kind": "failed", "state": "open",
            "job": snap, "failure": snap, "runs": ["r1"], "failures": 1, "errors": ["ORA-01017: denied"],
            "blocked": 3, "runbook": None, **values}


def test_a_failure_root_speaks_portuguese_when_asked_and_english_by_default() -> None:
    record = failure_record()
    english, pt = compose.job_root(record), compose.job_root(record, lang="pt")
    assert pt.title == english.title == "🔴 ABEND: CPU1#PAYROLL_DAILY.EXTRACT01"  # TWS's status word stays
    assert "terminou em ABEND com código de retorno 12" in pt.text and "sucessor(es) bloqueado(s)" in pt.text
    assert "ended ABEND with return code 12" in english.text
    fields = {f.label: f.value for f in pt.fields}
    assert fields["Código de retorno"] == "12" and fields["Sucessores bloqueados"] == "3"
    assert fields["Início"] == "2026-11-21 22:00:00 UTC" and "Return code" not in fields
    assert pt.code_title == "Linhas de erro do log do job"
    assert [b.label for b in pt.buttons] == ["Reexecutar", "Ver log", "Reconhecer", "Adiar 1 h", "Adiar 24 h"]
    assert [b.label for b in english.buttons] == ["Rerun", "Show log", "Acknowledge", "Snooze 1 h", "Snooze 24 h"]
    assert [b.action_id for b in pt.buttons] == [b.action_id for b in english.buttons]  # only the words change
    acted = compose.job_root(record, ack={"by": "ana", "at": 0.0, "run": "r1"}, snooze={"by": "bo", "until": 3600.0},
                             action={"tool": "rerun_job", "actor": "ana", "outcome": "refused: busy"}, lang="pt")
    assert acted.context == ("Reconhecido por ana em 1970-01-01 00:00 UTC · Adiado por bo até 1970-01-01 01:00 UTC"
                             " · Última ação: reexecução por ana (recusado: busy)")
    pend = compose.job_root(failure_record("PEND", kind="pend"), lang="pt")
    assert pend.title.endswith("(precisa de confirmação)") and pend.title.startswith("🟡 PEND:")
    rerun = {**record["job"], "status": "SUCC", "run": "r2", "reruns": 1}
    recovered = compose.job_root(failure_record(state="recovered", job=rerun), lang="pt")
    assert recovered.title.startswith("✅ RECUPERADO:") and recovered.text.startswith("Recuperado: a execução 1")
    assert [b.label for b in recovered.buttons] == ["Ver log"]


def test_thread_messages_group_and_notices_speak_portuguese_when_asked() -> None:
    record = failure_record(failures=2)
    recovered = {**record, "state": "recovered", "job": {**record["job"], "status": "SUCC", "reruns": 1}}
    assert compose.transition(recovered, "RECOVERED", lang="pt").text.startswith(
        "✅ CPU1#PAYROLL_DAILY.EXTRACT01 recuperado: a execução 1 terminou em SUCC")
    assert compose.transition(recovered, "RERUNNING", lang="pt").text == (
        "🔁 CPU1#PAYROLL_DAILY.EXTRACT01: reexecução 1 iniciada (SUCC).")
    assert compose.repeat_failure(record, lang="pt").text == (
        "🔴 CPU1#PAYROLL_DAILY.EXTRACT01 falhou de novo: a execução 0 terminou em ABEND com código de retorno 12 "
        "(falha 2 neste plano).")
    also = compose.new_in_group(record, lang="pt")
    assert also.text == "🔴 Também falhou: CPU1#PAYROLL_DAILY.EXTRACT01 — ABEND rc 12"
    assert compose.acknowledged("ana", lang="pt").text == "👍 Reconhecido por ana"
    assert compose.snoozed("ana", 24, 86400.0, lang="pt").text.startswith("😴 ana adiou os alertas por 24 h")
    assert compose.action_note(tool="hold_job", actor="ana", outcome="ok", lang="pt").text == (
        "🛠️ ana solicitou retenção: ok")
    assert compose.action_note(tool="hold_job", actor="ana", outcome="ok").text == "🛠️ ana ran hold: ok"
    down, up = compose.tws_down(0.0, lang="pt"), compose.tws_up(0.0, 600.0, lang="pt")
    assert down.title == "⚠️ TWS inacessível" and "desde 1970-01-01 00:00 UTC" in down.text
    assert up.title == "✅ TWS acessível novamente" and "cerca de 10 min" in up.text
    assert (compose.tws_down(0.0).title, compose.tws_up(0.0, 600.0).title) == ("⚠️ TWS unreachable",
                                                                              "✅ TWS reachable again")
    group = compose.group_root({"key": "burst:k", "stream": "CPU1#PAYROLL_DAILY", "ack": {"by": "ana"}},
                               [record, recovered], lang="pt")
    assert group.title == "🔴 2 falhas na job stream CPU1#PAYROLL_DAILY"
    assert "(1 ainda em aberto)" in group.text and "— RECUPERADO rc 12" in group.text
    assert [b.label for b in group.buttons] == ["Reconhecer todos", "Adiar 1 h", "Adiar 24 h"]
    assert group.context == "Reconhecido por ana"


def test_a_tws_error_notice_quotes_the_answer_bounded_and_without_credentials() -> None:
    answer = ("AWSJCO005E The engine is not available.\n  Request was: Authorization: Basic cmVzeW5jOnJlc3luYw== "
              "password=hunter2secret; token: xoxb-1234-abcdef " + "x" * 400)
    notice = compose.tws_error(0.0, answer)
    quoted = notice.text.split("“")[1].split("”")[0]
    assert notice.title == "⚠️ TWS is answering with errors" and notice.level == "warning"
    assert quoted.startswith("AWSJCO005E The engine is not available. Request was: Authorization: Basic [REDACTED]")
    assert "password=[REDACTED]" in quoted and "token: [REDACTED]" in quoted
    assert not any(s in notice.text for s in ("cmVzeW5jOnJlc3luYw==", "hunter2secret", "xoxb-1234", "\n"))
    assert len(quoted) == compose.MAX_ANSWER and quoted.endswith("…")
    assert compose.quote_answer(quoted) == quoted  # quoting twice changes nothing
    pt = compose.tws_error(0.0, "AWSJCO005E The engine is not available.", lang="pt")
    assert pt.title == "⚠️ O TWS está respondendo com erros"
    assert "Desde 1970-01-01 00:00 UTC o TWS responde às consultas do Resync com um erro: “AWSJCO005E" in pt.text
    assert compose.tws_up(0.0, 600.0, answered=True).title == "✅ TWS answering normally again"
    assert "cerca de 10 min" in compose.tws_up(0.0, 600.0, answered=True, lang="pt").text


def test_a_group_counts_and_marks_the_failures_of_its_burst_already_alerted_one_by_one() -> None:
    record = failure_record()
    earlier = {**record, "failure": {**record["failure"], "full_name": "CPU1#PAYROLL_DAILY.LOAD02", "rc": None}}
    group = {"key": "burst:k", "stream": "CPU1#PAYROLL_DAILY", "window": 600.0}
    pt = compose.group_root(group, [record], earlier=[earlier], lang="pt")
    assert pt.title == "🔴 1 falhas na job stream CPU1#PAYROLL_DAILY"  # the title counts what this thread holds
    assert pt.text.startswith("2 falhas na job stream CPU1#PAYROLL_DAILY em 10 min (1 já alertadas acima")
    assert pt.text.splitlines()[1:] == ["🔴 CPU1#PAYROLL_DAILY.LOAD02 — ABEND (alertado separadamente acima)",
                                        "🔴 CPU1#PAYROLL_DAILY.EXTRACT01 — ABEND rc 12"]
    en = compose.group_root(group, [record], earlier=[earlier])
    assert en.text.startswith("2 failures in job stream CPU1#PAYROLL_DAILY within 10 min (1 already alerted above")
    assert en.text.splitlines()[1].endswith("— ABEND (alerted separately above)")
    assert "alerted above" not in compose.group_root(group, [record]).text


# --- outbox -------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A Notifier that records what it is given and fails when the test says so."""

    def __init__(self, platform: str = "slack") -> None:
        self.platform = platform
        self.posts: list[tuple[str, Reply, str | None]] = []
        self.updates: list[tuple[str, str, Reply]] = []
        self.failures: list[DeliveryError] = []

    def handles(self, target: str) -> bool:
        return target.startswith(self.platform + ":")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        if self.failures:
            raise self.failures.pop(0)
        self.posts.append((target, reply, thread))
        return Posted(target=target, message_ref=f"ts{len(self.posts)}", thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.updates.append((target, message_ref, reply))


def outbox_for(store: Store, notifier: Recorder, clock: Clock, roots: dict[str, Reply]) -> Outbox:
    async def render(thread: str) -> Reply | None:
        return roots.get(thread)

    return Outbox(store, [notifier], render_root=render, clock=clock)


async def test_replies_wait_for_their_root_and_land_in_its_thread(store: Store) -> None:
    clock, chat, roots = Clock(), Recorder(), {"T1": Reply(text="root v1")}
    outbox = outbox_for(store, chat, clock, roots)
    chat.failures.append(DeliveryError("slack down", retry_after=5))
    await outbox.add("root:T1", op="root", target="slack:C", thread="T1", reply=Reply(text="fallback"))
    await outbox.add("reply:T1:1", op="reply", target="slack:C", thread="T1", reply=Reply(text="first"))
    await outbox.add("reply:T1:2", op="reply", target="slack:C", thread="T1", reply=Reply(text="second"))
    assert await outbox.deliver_due() == 0
    clock.now += 4
    assert await outbox.deliver_due() == 0 and chat.posts == []  # retry_after is respected
    clock.now += 2
    roots["T1"] = Reply(text="root v2")
    assert await outbox.deliver_due() == 3
    assert [(r.text, thread) for _, r, thread in chat.posts] == [("root v2", None), ("first", "ts1"),
                                                                 ("second", "ts1")]
    clock.now += 600
    assert await outbox.deliver_due() == 0 and await store.outbox_pending() == 0


async def test_a_notice_goes_out_before_the_failures_it_announces(store: Store) -> None:
    clock, chat = Clock(), Recorder()
    outbox = outbox_for(store, chat, clock, {"T": Reply(text="failure during the outage")})
    await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    clock.now += 0.001
    await outbox.add("notice:up", op="notice", target="slack:C", reply=Reply(text="TWS reachable again"))
    assert await outbox.deliver_due() == 2
    assert [r.text for _, r, _ in chat.posts] == ["TWS reachable again", "failure during the outage"]


async def test_a_reply_queued_before_its_root_exists_waits_rather_than_posting_loose(store: Store) -> None:
    clock, chat = Clock(), Recorder()
    outbox = outbox_for(store, chat, clock, {"T": Reply(text="root")})
    await outbox.add("reply:T:1", op="reply", target="slack:C", thread="T", reply=Reply(text="later"))
    assert await outbox.deliver_due() == 0 and chat.posts == []
    await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    clock.now += 3
    assert await outbox.deliver_due() == 2
    assert [(r.text, thread) for _, r, thread in chat.posts] == [("root", None), ("later", "ts1")]


async def test_updates_are_coalesced_and_skipped_before_the_root(store: Store) -> None:
    clock, chat, roots = Clock(), Recorder(), {"T": Reply(text="root v1")}
    outbox = outbox_for(store, chat, clock, roots)
    await outbox.add("update:T:0", op="update", target="slack:C", thread="T")
    assert await outbox.deliver_due() == 0 and chat.updates == []  # nothing to update yet
    await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    assert await outbox.deliver_due() == 1
    roots["T"] = Reply(text="root v3")
    for n in (1, 2, 3):
        await outbox.add(f"update:T:{n}", op="update", target="slack:C", thread="T")
    assert await outbox.deliver_due() == 1
    assert [(ref, r.text) for _, ref, r in chat.updates] == [("ts1", "root v3")]
    assert await store.outbox_pending() == 0


async def test_backoff_grows_and_a_permanent_error_drops_the_thread(store: Store) -> None:
    clock, chat = Clock(), Recorder()
    outbox = outbox_for(store, chat, clock, {"T": Reply(text="root")})
    chat.failures += [DeliveryError("500"), DeliveryError("500"), DeliveryError("channel_not_found", permanent=True)]
    await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    await outbox.add("reply:T:1", op="reply", target="slack:C", thread="T", reply=Reply(text="x"))
    await outbox.deliver_due()
    first = (await store.outbox_due(clock.now + 1000))[0].due_at - clock.now
    clock.now += first
    await outbox.deliver_due()
    second = min(i.due_at for i in await store.outbox_due(clock.now + 1000)) - clock.now
    assert 1.0 <= first < second <= 10.0
    clock.now += second
    assert await outbox.deliver_due() == 0  # the permanent error: root dropped, so is its reply
    clock.now += ROOT_WAIT_PLUS
    assert await outbox.deliver_due() == 0
    assert chat.posts == [] and await store.outbox_pending() == 0


ROOT_WAIT_PLUS = 3.0


async def test_a_root_already_posted_before_a_restart_is_not_posted_again(store: Store) -> None:
    clock, chat = Clock(), Recorder()
    outbox = outbox_for(store, chat, clock, {"T": Reply(text="root")})
    await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    assert await outbox.deliver_due() == 1
    assert not await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    await store.outbox_add("root:T:replayed", {"op": "root", "target": "slack:C", "thread": "T", "seq": [0, 0],
                                               "reply": None}, clock.now)
    assert await outbox.deliver_due() == 0 and len(chat.posts) == 1


async def test_a_target_no_notifier_handles_is_kept_and_retried_with_one_error(store: Store) -> None:
    from structlog.testing import capture_logs

    clock, chat = Clock(), Recorder()
    outbox = outbox_for(store, chat, clock, {"T": Reply(text="root")})
    await outbox.add("notice:1", op="notice", target="teams:19:abc", reply=Reply(text="TWS down"))
    await outbox.add("root:T", op="root", target="teams:19:abc", thread="T", reply=Reply(text="fallback"))
    delays = []
    with capture_logs() as logs:
        for _ in range(6):
            assert await outbox.deliver_due() == 0
            due = max(i.due_at for i in await store.outbox_due(clock.now + 10_000))
            delays.append(due - clock.now)
            clock.now = due  # both are due again
    unhandled = [e for e in logs if e["event"] == "alert_target_unhandled"]
    assert len(unhandled) == 1 and unhandled[0]["log_level"] == "error"  # once per target, not per attempt
    assert delays[0] < delays[-1] <= 60.0 * 1.2  # backing off, capped: a restart soon finds them
    assert await store.outbox_pending() == 2 and chat.posts == []
    # The next process has the adapter: both are delivered, once.
    teams = Recorder("teams")
    later = outbox_for(store, teams, clock, {"T": Reply(text="root")})
    assert await later.deliver_due() == 2 and await later.deliver_due() == 0
    assert sorted(r.text for _, r, _ in teams.posts) == ["TWS down", "root"]
    assert await store.outbox_pending() == 0


async def test_an_update_that_changes_nothing_is_not_sent(store: Store) -> None:
    clock, chat, roots = Clock(), Recorder(), {"T": Reply(text="v1")}
    outbox = outbox_for(store, chat, clock, roots)
    await outbox.add("root:T", op="root", target="slack:C", thread="T", reply=Reply(text="fallback"))
    assert await outbox.deliver_due() == 1
    await outbox.add("update:T:1", op="update", target="slack:C", thread="T")
    assert await outbox.deliver_due() == 0 and chat.updates == []  # the same root as posted
    roots["T"] = Reply(text="v2")
    await outbox.add("update:T:2", op="update", target="slack:C", thread="T")
    assert await outbox.deliver_due() == 1
    # Another process (same store) knows what the root shows now.
    restarted = outbox_for(store, chat, clock, roots)
    await restarted.add("update:T:3", op="update", target="slack:C", thread="T")
    assert await restarted.deliver_due() == 0
    assert [r.text for _, _, r in chat.updates] == ["v2"] and await store.outbox_pending() == 0
