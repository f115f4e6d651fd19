"""Job logs (stdlists) written on demand, never stored: 100,000 jobs would not fit.

A log is a pure function of the run (job, times, outcome, return code) and a seed, so asking
twice gives the same text. The layout follows tws-api.md section 4: the ``= JOB :`` header, the
job's own output in the voice of its tool (SQL*Plus, DB2 CLP, a Java batch, ftp, a shell script,
SAP, PowerShell) and the footer with ``Exit Status : <rc>``. Failed runs end with error lines
that fit the tool and the return code.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

RULE = "=" * 63


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    rc: int
    lines: tuple[str, ...]  # str.format templates over the log's vocabulary
    early: bool = False  # fails while connecting: no output before the error


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """What a log needs to know about one run."""

    job: str
    stream: str
    workstation: str
    kind: str
    sched: float
    job_number: int
    start: float
    end: float
    now: float
    outcome: str
    rc: int | None
    note: str
    seed: int


def _f(rc: int, *lines: str, early: bool = False) -> Failure:
    return Failure(rc=rc, lines=lines, early=early)


FAILURES: dict[str, tuple[Failure, ...]] = {
    "oracle": (
        _f(12, "ERROR:", "ORA-01017: invalid username/password; logon denied", "",
           "SP2-0751: Unable to connect to Oracle.  Exiting SQL*Plus", early=True),
        _f(8, "ERROR at line 1:", "ORA-00060: deadlock detected while waiting for resource",
           'ORA-06512: at "{schema}.PKG_{job}", line 214', "ORA-06512: at line 1"),
        _f(8, "ERROR at line 1:",
           "ORA-01653: unable to extend table {schema}.{table} by 8192 in tablespace {schema}_DATA"),
        _f(12, "ERROR:", "ORA-12541: TNS:no listener", "", "SP2-0751: Unable to connect to Oracle.  Exiting SQL*Plus",
           early=True),
        _f(4, "ERROR at line 1:",
           'ORA-01555: snapshot too old: rollback segment number 12 with name "_SYSSMU12_2873412$" too small'),
    ),
    "db2": (
        _f(8, "SQL0911N  The current transaction has been rolled back because of a deadlock or timeout.  "
              'Reason code "2".  SQLSTATE=40001'),
        _f(8, 'SQL0204N  "{schema}.{table}" is an undefined name.  SQLSTATE=42704'),
        _f(12, "SQL0964C  The transaction log for the database is full.  SQLSTATE=57011"),
        _f(4, "SQL0803N  One or more values in the INSERT statement, UPDATE statement, or foreign key update caused "
              'by a DELETE statement are not valid because the primary key, unique constraint or unique index '
              'identified by "1" constrains table "{schema}.{table}" from having duplicate values for the index key.  '
              "SQLSTATE=23505"),
        _f(16, "SQL1224N  The database manager is not able to accept new requests, has terminated all requests in "
               "progress, or has terminated the specified request because of an error or a forced interrupt.  "
               "SQLSTATE=55032"),
    ),
    "java": (
        _f(1, "{ts} ERROR [main] br.com.empresa.batch.{cls} - Falha ao conectar em {host}:5432",
           "java.net.ConnectException: Connection refused (Connection refused)",
           "\tat java.base/sun.nio.ch.Net.connect0(Native Method)",
           "\tat java.base/sun.nio.ch.Net.connect(Net.java:579)",
           "\tat java.base/java.net.Socket.connect(Socket.java:633)",
           "\tat org.postgresql.core.PGStream.<init>(PGStream.java:98)",
           "\tat br.com.empresa.batch.{cls}.run({cls}.java:87)", early=True),
        _f(12, "{ts} ERROR [pool-1-thread-3] br.com.empresa.batch.Writer - Erro fatal no lote {batch}",
           "java.lang.OutOfMemoryError: Java heap space",
           "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3512)",
           "\tat java.base/java.util.ArrayList.grow(ArrayList.java:237)",
           "\tat br.com.empresa.batch.Writer.buffer(Writer.java:142)"),
        _f(8, "{ts} ERROR [main] br.com.empresa.batch.{cls} - Erro de banco de dados",
           "java.sql.SQLRecoverableException: IO Error: The Network Adapter could not establish the connection",
           "\tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:854)",
           "\tat br.com.empresa.batch.{cls}.open({cls}.java:51)", early=True),
    ),
    "ftp": (
        _f(4, "ftp: connect: Connection refused", "ftp: Not connected.", early=True),
        _f(8, "530 Login incorrect.", "Login failed.", "221 Goodbye.", early=True),
        _f(12, "550 {file}: No such file or directory"),
        _f(16, "421 Service not available, remote server has closed connection"),
    ),
    "shell": (
        _f(12, "[{ts}] ERROR: disk quota exceeded", "tar: /backup/{path}: Wrote only 4096 of 10240 bytes",
           "tar: Error is not recoverable: exiting now"),
        _f(127, "/opt/batch/bin/{script}: line 42: rsync: command not found"),
        _f(2, "cp: cannot stat '/data/in/{file}': No such file or directory"),
        _f(1, "mkdir: cannot create directory '/backup/{path}': Permission denied"),
    ),
    "sap": (
        _f(8, "{ts} IDoc {idoc} status 51: Application document not posted",
           "{ts} Message no. VG205: Material 100234 does not exist in plant 1000",
           "{ts} Job {job} finished with status ABORTED (A)"),
        _f(12, "{ts} RFC_ERROR_COMMUNICATION: Connect to SAP gateway failed",
           "{ts} Connect_PM  GWHOST=sapprd01, GWSERV=sapgw00, ASHOST=sapprd01, SYSNR=00",
           "{ts} LOCATION    CPIC (TCP/IP) on local host",
           "{ts} ERROR       partner '10.20.30.41:sapgw00' not reached", early=True),
        _f(4, "{ts} Job {job} was cancelled in SAP (status A)",
           "{ts} Step 001: ABAP/4 processor: DBSQL_DUPLICATE_KEY_ERROR"),
    ),
    "windows": (
        _f(1, "{ts} Invoke-ProcessASDatabase : A connection cannot be made. Ensure that the server is running.",
           "At C:\\batch\\{job}.ps1:18 char:1", early=True),
        _f(5, "{ts} Access is denied."),
        _f(112, "{ts} There is not enough space on the disk."),
    ),
}

_INTRO: dict[str, tuple[str, ...]] = {
    "oracle": ("", "SQL*Plus: Release 19.0.0.0.0 - Production on {day}", "Version 19.21.0.0.0", "",
               "Copyright (c) 1982, 2023, Oracle.  All rights reserved.", "", "Connected to:",
               "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production", ""),
    "db2": ("", "   Database Connection Information", "", " Database server        = DB2/AIX64 11.5.8.0",
            " SQL authorization ID   = BATCHUSR", " Local database alias   = DWPRD", ""),
    "java": ("{ts} INFO  [main] br.com.empresa.batch.Launcher - Iniciando {job} (versao 4.12.3)",
             "{ts} INFO  [main] com.zaxxer.hikari.HikariDataSource - HikariPool-1 - Starting...",
             "{ts} INFO  [main] com.zaxxer.hikari.HikariDataSource - HikariPool-1 - Start completed."),
    "ftp": ("Connected to {host}.", "220 ({host}) FTP server ready", "331 Please specify the password.",
            "230 Login successful.", "200 Switching to Binary mode."),
    "shell": ("[{ts}] INFO: inicio de {script} (pid {pid})",),
    "sap": ("{ts} Job {job} released in SAP system PRD client 300 (job count {jobcount})",
            "{ts} Job status: Active", "{ts} Step 001 started (program RBDAPP01, variant Z_{job})"),
    "windows": ("{ts} Starting {job} on {workstation}",),
}

_BODY: dict[str, tuple[str, ...]] = {
    "oracle": ("{n} rows created.", "", "Commit complete.", "{n} rows updated.",
               "PL/SQL procedure successfully completed.", "Table {table} analyzed.",
               "Elapsed: 00:0{m}:{s:02d}.{cs:02d}", "INFO: processando lote {batch} de {batches}",
               "Session altered.", "{n} rows deleted."),
    "db2": ("DB20000I  The SQL command completed successfully.", "Number of rows read         = {n}",
            "Number of rows inserted     = {n}",
            'SQL3110N  The utility has completed processing.  "{n}" rows were read from the input file.',
            "Number of rows committed    = {n}",
            'SQL3149N  "{n}" rows were processed from the input file.  "{n}" rows were successfully inserted into the '
            'table.  "0" rows were rejected.'),
    "java": ("{ts} INFO  [main] br.com.empresa.batch.{cls} - Lote {batch}/{batches}: {n} registros lidos",
             "{ts} INFO  [pool-1-thread-{t}] br.com.empresa.batch.Writer - {n} registros gravados em {table}",
             "{ts} DEBUG [main] com.zaxxer.hikari.pool.HikariPool - HikariPool-1 - Pool stats (total=10, active={t}, "
             "idle={idle}, waiting=0)",
             "{ts} WARN  [main] br.com.empresa.batch.Validator - {k} registros rejeitados (CPF invalido)"),
    "ftp": ("local: {file} remote: {file}", "227 Entering Passive Mode (10,20,30,40,{p1},{p2}).",
            "150 Opening BINARY mode data connection for {file} ({n} bytes).", "226 Transfer complete.",
            "{n} bytes sent in {sec} secs ({rate} kB/s)"),
    "shell": ("[{ts}] INFO: copiando /data/{stem}/part{part:03d}.dat", "a {stem}/part{part:03d}.dat",
              "sent {n} bytes  received {k} bytes  {rate} bytes/sec", "[{ts}] INFO: {k} arquivos processados",
              "removed '/tmp/{stem}.{k}.tmp'"),
    "sap": ("{ts} IDoc {idoc} processed, status 53 (Application document posted)", "{ts} {n} IDocs selected",
            "{ts} Spool request {spool} created", "{ts} Step 001: {k} documents posted"),
    "windows": ("{ts} Processing partition {part} of cube {cube}", "{ts} Rows read: {n}",
                "        1 file(s) copied.", "{ts} Processing completed for {cube}"),
}

_OUTRO: dict[str, tuple[str, ...]] = {
    "oracle": ("Disconnected from Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production",),
    "db2": ("DB20000I  The TERMINATE command completed successfully.",),
    "java": ("{ts} INFO  [main] br.com.empresa.batch.Launcher - {job} concluido com sucesso",),
    "ftp": ("221 Goodbye.",),
    "shell": ("[{ts}] INFO: fim de {script}",),
    "sap": ("{ts} Job {job} finished (status F)",),
    "windows": ("{ts} {job} completed successfully",),
}

_TASKS = {
    "oracle": "sqlplus -s /@DWPRD @/opt/batch/sql/{lower}.sql",
    "db2": "/opt/batch/db2/{lower}.sh",
    "java": "java -Xmx2g -jar /opt/batch/lib/batch-runner.jar --job {job}",
    "ftp": "/opt/batch/ftp/{lower}.sh",
    "shell": "/opt/batch/bin/{lower}.sh",
    "sap": "r3batch -job {job} -client 300 -user TWSBATCH",
    "windows": "powershell.exe -NoProfile -File C:\\batch\\{job}.ps1",
}


def error_for(kind: str, draw: float) -> Failure:
    """The failure a job of this kind shows for a uniform ``draw``; its rc is the run's rc."""
    choices = FAILURES.get(kind, FAILURES["shell"])
    return choices[min(int(draw * len(choices)), len(choices) - 1)]


def _failure(run: RunView, rng: random.Random) -> Failure:
    """The kind's failure with the run's return code if there is one (so rc and text agree)."""
    choices = FAILURES.get(run.kind, FAILURES["shell"])
    matching = [f for f in choices if f.rc == run.rc]
    return rng.choice(matching or choices)


def render(run: RunView) -> list[str]:
    """The whole log as it stands at ``run.now``: empty before launch, without footer while running."""
    if run.start > run.now:
        return []
    rng = random.Random(run.seed)
    words = _vocabulary(run, rng)
    lines = _header(run)
    running = run.end > run.now
    if run.rc is None and not running:  # FAIL: it never got as far as running
        return [*lines, f'AWSBDW057E The job could not be launched: user "batch" is not defined on {run.workstation}.']
    failed = run.rc != 0
    body_size = rng.randint(20, 400) - 16
    if running:
        share = (run.now - run.start) / max(run.end - run.start, 1.0)
    elif run.note == "killed":
        share = 0.5
    else:
        share = 0.3 + 0.7 * rng.random() if failed else 1.0
    failure = _failure(run, rng) if failed and not running and run.note != "killed" else None
    if failure is not None and failure.early:
        share = 0.0
    ticks = _ticker(run, words, body_size)
    intro = _INTRO.get(run.kind, ())
    if failure is not None and failure.early and run.kind == "ftp":
        intro = ()  # the connection is what failed
    lines += [_fill(line, words, rng, ticks) for line in intro]
    body = _BODY.get(run.kind, _BODY["shell"])
    lines += [_fill(rng.choice(body), words, rng, ticks) for _ in range(max(0, int(body_size * share)))]
    if running:
        return lines
    if run.note == "killed":
        lines.append(f"/opt/batch/bin/{run.job.lower()}.sh: line 1: {words['pid']} Killed")
    elif failure is not None:
        lines += [_fill(line, words, rng, ticks) for line in failure.lines]
    else:
        lines += [_fill(line, words, rng, ticks) for line in _OUTRO.get(run.kind, ())]
    return lines + _footer(run, rng)


def _header(run: RunView) -> list[str]:
    sched = time.gmtime(run.sched)
    at = f"({sched.tm_hour:02d}{sched.tm_min:02d} {sched.tm_mon:02d}/{sched.tm_mday:02d}/{sched.tm_year % 100:02d})"
    task = _TASKS.get(run.kind, _TASKS["shell"])
    if run.workstation.startswith("WIN") and run.kind in {"ftp", "shell"}:
        task = "C:\\batch\\{job}.cmd"
    task = task.format(job=run.job, lower=run.job.lower())
    return [RULE, f"= JOB : {run.workstation}#{run.stream}[{at},({run.stream})].{run.job}", f"= TASK : {task}",
            "= TWSRCMAP :", f"= AGENT : {run.workstation}", f"= Job Number: {run.job_number}",
            f"= {_stamp(run.start)}", RULE]


def _footer(run: RunView, rng: random.Random) -> list[str]:
    elapsed = int(max(run.end - run.start, 0))
    return [RULE, f"= Exit Status : {run.rc if run.rc is not None else -1}",
            f"= Elapsed Time (hh:mm:ss) : {elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}",
            f"= Job CPU usage (ms) : {rng.randint(40, 900_000)}",
            f"= Job Memory usage (kb) : {rng.randint(2_000, 2_000_000)}",
            f"= {_stamp(run.end)}", RULE]


def _stamp(t: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(t))


def _vocabulary(run: RunView, rng: random.Random) -> dict[str, object]:
    """Per-log constants, so a log names one host, one file, one table throughout."""
    stem = run.job.lower()
    return {
        "job": run.job, "workstation": run.workstation, "schema": rng.choice(("DW", "FIN", "RH", "VENDAS", "STG")),
        "table": rng.choice(("FATO_VENDAS", "DIM_CLIENTE", "STG_PEDIDOS", "TB_FOLHA", "TB_LANCAMENTOS", "DIM_PRODUTO")),
        "host": rng.choice(("ftp.bancoabc.com.br", "sftp.parceiro.com.br", "dbprd01.empresa.local", "10.20.30.41")),
        "file": f"{run.stream.split('_')[0]}_{time.strftime('%Y%m%d', time.gmtime(run.sched))}.txt",
        "path": f"{stem}/{time.strftime('%Y/%m/%d', time.gmtime(run.sched))}/part{rng.randint(1, 64):03d}.dat",
        "script": f"{stem}.sh", "stem": stem, "cls": "".join(p.capitalize() for p in stem.split("_")),
        "cube": rng.choice(("Vendas", "Financeiro", "Estoque")), "pid": rng.randint(2_000, 65_000),
        "jobcount": f"{rng.randint(10_000_000, 99_999_999)}", "day": _stamp(run.start),
        "batches": rng.randint(10, 80),
    }


def _ticker(run: RunView, words: dict[str, object], lines: int) -> Callable[[], str]:
    """Timestamps that walk from the run's start towards its end, one step per line."""
    end = run.end if math.isfinite(run.end) else run.start
    step = max(end - run.start, 1.0) / max(lines + 8, 1)
    state = {"t": run.start}

    def tick() -> str:
        state["t"] = min(state["t"] + step, end)
        whole = int(state["t"])
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + f",{int((state['t'] - whole) * 1000):03d}"

    return tick


def _fill(template: str, words: dict[str, object], rng: random.Random, tick: Callable[[], str]) -> str:
    if "{" not in template:
        return template
    values = dict(words)
    values.update(
        ts=tick() if "{ts}" in template else "", n=rng.randint(100, 250_000), k=rng.randint(1, 900),
        m=rng.randint(0, 9), s=rng.randint(0, 59), cs=rng.randint(0, 99), batch=rng.randint(1, 10),
        t=rng.randint(1, 8), idle=rng.randint(0, 9), p1=rng.randint(100, 250), p2=rng.randint(0, 255),
        sec=f"{rng.uniform(0.1, 90):.2f}", rate=f"{rng.uniform(200, 90_000):.1f}",
        idoc=f"{rng.randint(10**15, 10**16 - 1):016d}", spool=rng.randint(10_000, 99_999), part=rng.randint(1, 36),
    )
    return template.format_map(values)
