"""The names of the simulated shop: workstations, job stream templates and the jobs they hold.

A Brazilian company's night batch: payroll, data warehouse, month-end close, bank files, SAP
IDocs. Templates are reused across many stream instances (``PAYROLL_DAILY``,
``PAYROLL_DAILY_SP``, ...), and a few job names (``EXTRACT01``, ``LOAD01``, ``REPORT01``,
``LOAD_CUST``) appear in several templates, so the same job name lives in several streams, which
is exactly the ambiguity operators (and the bot) must cope with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

#: Workstation names; V2 JSON shows them as folder paths ("/AGT01").
WORKSTATIONS: tuple[str, ...] = (
    "CPU1", "AGT01", "AGT02", "AGT03", "LNX_ETL01", "LNX_ETL02", "AIX_DB01", "WIN_FTP01", "WIN_APP01",
    "SAP_PRD01",
)

#: Folders of the workstations that do not sit in the root folder (V2 names them by path [A]).
WORKSTATION_FOLDERS: dict[str, str] = {
    "LNX_ETL01": "/ETL/", "LNX_ETL02": "/ETL/", "AIX_DB01": "/DB/", "WIN_FTP01": "/WIN/", "WIN_APP01": "/WIN/",
    "SAP_PRD01": "/SAP/PRD/", "AGT03": "/BR/SP/",
}

#: Folders of the job stream templates (the job's ``folder`` field); the rest live in "/".
STREAM_FOLDERS: dict[str, str] = {
    "PAYROLL_DAILY": "/RH/", "HR_EXPORT": "/RH/", "DW_NIGHTLY": "/DW/", "ETL_VENDAS": "/DW/", "BI_REFRESH": "/DW/",
    "FECHAMENTO_MENSAL": "/FIN/", "GL_POSTING": "/FIN/", "AR_AGING": "/FIN/", "AP_PAGAMENTOS": "/FIN/",
    "TESOURARIA": "/FIN/", "CONTABIL_DIARIO": "/FIN/", "SAP_IDOC": "/SAP/", "SAP_FI_CLOSE": "/SAP/",
    "SAP_MM_CARGA": "/SAP/",
}


@functools.cache
def workstation_path(name: str) -> str:
    """``/AGT01`` in the root folder, ``/ETL/LNX_ETL01`` in a folder."""
    return WORKSTATION_FOLDERS.get(name, "/") + name


#: Job kinds decide what the stdlist looks like and how the job fails.
KINDS: tuple[str, ...] = ("oracle", "db2", "java", "ftp", "shell", "sap", "windows")

#: Suffixes of the second and later instances of a template, before falling back to numbers.
INSTANCE_SUFFIXES: tuple[str, ...] = ("SP", "RJ", "MG", "RS", "PR", "BA", "PE", "SC", "GO", "DF")


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    name: str
    kind: str
    workstations: tuple[str, ...]
    jobs: tuple[str, ...]


def _t(name: str, kind: str, workstations: str, jobs: str) -> Template:
    return Template(name=name, kind=kind, workstations=tuple(workstations.split()), jobs=tuple(jobs.split()))


TEMPLATES: tuple[Template, ...] = (
    _t("PAYROLL_DAILY", "oracle", "AGT01 AGT02",
       "EXTRACT01 VALIDA_PONTO CALC_FOLHA LOAD01 GERA_HOLERITE FTP_BANCO_ENV REPORT01"),
    _t("DW_NIGHTLY", "oracle", "LNX_ETL01 LNX_ETL02",
       "EXTRACT01 STAGE_LOAD LOAD_CUST LOAD_PROD LOAD_FACT_VENDAS AGG_DIARIO REFRESH_MV STATS_GATHER"),
    _t("FECHAMENTO_MENSAL", "oracle", "CPU1 AGT01",
       "CLOSE_AP CLOSE_AR APURA_IMPOSTOS CONSOLIDA RAZAO_GERAL BALANCETE REPORT01"),
    _t("BKP_DIARIO", "shell", "LNX_ETL01 AIX_DB01 AGT03", "BKP_ORACLE BKP_FILES BKP_VERIFY BKP_PURGE BKP_REPORT"),
    _t("ETL_VENDAS", "java", "LNX_ETL01 LNX_ETL02",
       "EXTRACT01 TRANSFORM01 LOAD01 LOAD_CUST DQ_CHECK PUBLISH_VENDAS"),
    _t("SAP_IDOC", "sap", "SAP_PRD01", "SAP_IDOC_IN SAP_IDOC_PROC SAP_IDOC_OUT SAP_IDOC_REPROC SAP_IDOC_REPORT"),
    _t("GL_POSTING", "oracle", "CPU1 AGT01", "EXTRACT01 GL_VALIDATE GL_POST GL_RECON LOAD01"),
    _t("FTP_BANCO", "ftp", "WIN_FTP01", "FTP_BANCO_ENV FTP_BANCO_RET CNAB_VALIDA CNAB_IMPORT ARQ_ARCHIVE"),
    _t("CONCILIACAO_BANCARIA", "db2", "AIX_DB01", "EXTRACT01 CONCILIA_CC CONCILIA_PIX LOAD01 REPORT01"),
    _t("FATURAMENTO", "oracle", "AGT02 AGT03", "EXTRACT01 CALC_FATURA GERA_NFE LOAD01 REPORT01"),
    _t("NFE_EMISSAO", "java", "LNX_ETL02 WIN_APP01", "NFE_GERA_XML NFE_ASSINA NFE_TRANSMITE NFE_RETORNO"),
    _t("ESTOQUE_CARGA", "db2", "AIX_DB01 AGT02", "EXTRACT01 LOAD_ESTOQUE RECALC_CUSTO LOAD01"),
    _t("CRM_SYNC", "java", "LNX_ETL01", "CRM_EXTRACT LOAD_CUST CRM_DEDUP CRM_PUBLISH"),
    _t("BI_REFRESH", "windows", "WIN_APP01", "BI_CUBE_VENDAS BI_CUBE_FIN BI_REFRESH_DASH"),
    _t("AR_AGING", "oracle", "AGT01 AGT03", "EXTRACT01 AR_CALC_AGING AR_REPORT"),
    _t("AP_PAGAMENTOS", "oracle", "AGT01", "AP_SELECT AP_GERA_REMESSA FTP_BANCO_ENV AP_BAIXA"),
    _t("CNAB_RETORNO", "ftp", "WIN_FTP01", "FTP_BANCO_RET CNAB_VALIDA CNAB_BAIXA REPORT01"),
    _t("PIX_CONCILIA", "java", "LNX_ETL02", "PIX_EXTRACT PIX_MATCH PIX_REPORT"),
    _t("HR_EXPORT", "shell", "AGT02", "EXTRACT01 HR_ESOCIAL FTP_ESOCIAL"),
    _t("MAINFRAME_XFER", "ftp", "WIN_FTP01 AGT03", "MF_XFER_IN MF_VALIDA MF_XFER_OUT"),
    _t("LOG_ROTATE", "shell", "LNX_ETL01 LNX_ETL02 AGT03", "LOG_ROTATE LOG_COMPRESS LOG_PURGE"),
    _t("DB_REORG", "db2", "AIX_DB01", "DB_RUNSTATS DB_REORG_TAB DB_REORG_IDX DB_REBIND"),
    _t("ARQUIVO_MENSAL", "shell", "AGT03", "ARQ_SELECT ARQ_COMPRESS ARQ_MOVE ARQ_PURGE"),
    _t("SAP_FI_CLOSE", "sap", "SAP_PRD01", "SAP_FI_OPEN_ITEMS SAP_FI_CLOSE SAP_CO_SETTLE SAP_FI_REPORT"),
    _t("EDI_PEDIDOS", "java", "LNX_ETL02 AGT02", "EDI_RECEIVE EDI_TRANSLATE LOAD01 EDI_ACK"),
    _t("RISCO_CREDITO", "oracle", "AGT02", "EXTRACT01 SCORE_CALC LOAD01 REPORT01"),
    _t("MKT_CAMPANHA", "java", "LNX_ETL01", "EXTRACT01 SEGMENTA_BASE LOAD_CUST ENVIA_CAMPANHA"),
    _t("LOGISTICA_ROTAS", "java", "LNX_ETL02", "EXTRACT01 CALC_ROTAS PUBLISH_ROTAS"),
    _t("TESOURARIA", "oracle", "AGT01 CPU1", "EXTRACT01 POSICAO_CAIXA FTP_BANCO_RET LOAD01"),
    _t("AUDITORIA_SEG", "shell", "CPU1 AGT03", "AUDIT_COLETA AUDIT_ANALISA AUDIT_REPORT"),
    _t("SAP_MM_CARGA", "sap", "SAP_PRD01", "SAP_IDOC_IN SAP_MM_POST SAP_MM_REPORT"),
    _t("CONTABIL_DIARIO", "db2", "AIX_DB01 AGT01", "EXTRACT01 LANCA_CONTABIL LOAD01 REPORT01"),
)


def job_kind(template_kind: str, job_name: str) -> str:
    """The prefix of a job's name beats its template: FTP_BANCO_ENV in a payroll stream is ftp."""
    for prefix, kind in (("FTP_", "ftp"), ("SAP_", "sap"), ("BKP_", "shell"), ("MF_XFER", "ftp")):
        if job_name.startswith(prefix):
            return kind
    return template_kind
