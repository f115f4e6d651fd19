"""A small English ↔ Brazilian Portuguese glossary of operations terms, for cross-language search.

The only sentence model that loads offline here (all-MiniLM-L6-v2) is English-only, and BM25
matches words, not meanings: a question in Portuguese about a runbook written in English shares
only its error codes with it. Appending the other language's words for the operations terms a
text contains (to chunks when they are indexed and to questions when they are asked) lets both
the dense and the sparse side match across languages. ``bench/kb.py`` measures the difference.

Each entry is a group of equivalent terms; a text containing any of them (accents and case
ignored, whole words) gets the group's terms of the other language appended: all of them to a
chunk, so that any phrasing matches it, and only the first of each group to a question, which is
enough to meet the chunk's terms and keeps the question short (the sentence model's cost grows
with its length: a third fewer words, with the same recall on the tuning questions).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# (english terms, portuguese terms)
GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("fail", "fails", "failed", "failure", "failing"), ("falha", "falhou", "falhar", "falham", "falhando", "erro")),
    (("error",), ("erro", "erros")),
    (("fix", "solve", "resolve", "repair"), ("corrigir", "resolver", "consertar", "arrumar", "solucionar")),
    (("what to do", "how do i", "how to"), ("o que fazer", "como")),
    (("deadlock",), ("impasse", "travamento mutuo", "bloqueio mutuo")),
    (("lock", "locked", "locks"), ("bloqueio", "bloqueado", "bloqueada", "trava", "travado")),
    (("timeout", "timed out", "time out"), ("tempo esgotado", "tempo limite", "estourou o tempo", "expirou")),
    (("connection refused",), ("conexao recusada",)),
    (("connection", "connect"), ("conexao", "conectar")),
    (("refused", "rejected"), ("recusada", "recusado", "rejeitada")),
    (("password", "credentials"), ("senha", "credenciais")),
    (("authentication", "login", "logon"), ("autenticacao", "login")),
    (("permission denied", "access denied"), ("permissao negada", "acesso negado")),
    (("permission", "permissions"), ("permissao", "permissoes")),
    (("disk full", "no space left"), ("disco cheio", "sem espaco")),
    (("disk", "filesystem", "file system"), ("disco", "sistema de arquivos")),
    (("space",), ("espaco",)),
    (("full",), ("cheio", "cheia", "lotado", "lotada")),
    (("file", "files"), ("arquivo", "arquivos")),
    (("missing", "not found"), ("ausente", "faltando", "nao encontrado", "nao encontrada", "inexistente")),
    (("transfer", "upload", "download"), ("transferencia", "envio", "transferir")),
    (("database",), ("banco de dados", "banco")),
    (("tablespace",), ("tablespace",)),
    (("memory", "out of memory"), ("memoria", "sem memoria")),
    (("killed", "kill"), ("morto", "matar", "encerrado a forca")),
    (("job", "jobs"), ("job", "jobs", "tarefa", "tarefas")),
    (("job stream", "stream"), ("cadeia", "fluxo", "job stream")),
    (("rerun", "re-run", "restart"), ("reexecutar", "rodar de novo", "reiniciar", "reprocessar")),
    (("return code", "exit code", "rc"), ("codigo de retorno", "codigo de saida", "rc")),
    (("abend", "abended", "abnormal end"), ("abend", "abendou", "termino anormal")),
    (("data exception",), ("excecao de dados", "dado invalido")),
    (("invalid",), ("invalido", "invalida")),
    (("duplicate", "duplicated"), ("duplicado", "duplicada", "duplicidade")),
    (("key",), ("chave",)),
    (("certificate", "ssl", "tls"), ("certificado", "ssl", "tls")),
    (("expired",), ("expirado", "expirada", "vencido", "vencida")),
    (("network", "host"), ("rede", "host")),
    (("unreachable", "down"), ("inacessivel", "fora do ar", "indisponivel")),
    (("slow", "late", "running long"), ("lento", "lenta", "atrasado", "atrasada", "demorando")),
    (("backup",), ("backup", "copia de seguranca")),
    (("report", "reports"), ("relatorio", "relatorios")),
    (("payroll",), ("folha de pagamento", "folha")),
    (("billing", "invoice", "invoices"), ("faturamento", "fatura", "faturas", "cobranca")),
    (("extract", "extraction"), ("extracao", "extrair")),
    (("load", "loading"), ("carga", "carregar", "carregamento")),
    (("schema",), ("esquema", "schema")),
    (("column",), ("coluna",)),
    (("table",), ("tabela",)),
    (("row", "rows", "record", "records"), ("linha", "linhas", "registro", "registros")),
    (("query",), ("consulta", "query")),
    (("snapshot too old",), ("snapshot antigo",)),
    (("undo",), ("undo",)),
    (("archive", "archived"), ("arquivamento", "arquivar")),
    (("log",), ("log",)),
    (("agent", "workstation"), ("agente", "estacao de trabalho")),
    (("certificate expired",), ("certificado expirado", "certificado vencido")),
    (("dependency", "dependencies", "predecessor"), ("dependencia", "dependencias", "predecessor")),
    (("wait", "waiting", "stuck", "hung"), ("espera", "esperando", "preso", "parado", "travou")),
    (("cancel", "cancelled"), ("cancelar", "cancelado")),
    (("hold", "held"), ("segurar", "retido", "em espera")),
    (("resource",), ("recurso",)),
    (("user", "account"), ("usuario", "conta")),
    (("checksum", "corrupt", "corrupted"), ("checksum", "corrompido", "corrompida")),
    (("empty",), ("vazio", "vazia")),
    (("format", "parse", "parsing"), ("formato", "analisar", "interpretar")),
    (("encoding", "charset"), ("codificacao", "charset")),
    (("quota",), ("cota",)),
    (("daily",), ("diario", "diaria")),
    (("monthly", "month end", "month-end"), ("mensal", "fechamento do mes", "fim do mes")),
    (("server",), ("servidor",)),
    (("script",), ("script",)),
    (("command not found",), ("comando nao encontrado",)),
    (("segmentation fault", "core dump", "crash", "crashed"), ("falha de segmentacao", "core dump", "caiu", "travou")),
    (("escalate", "on-call", "on call"), ("escalar", "plantao", "sobreaviso")),
    (("retry", "try again"), ("tentar de novo", "tentar novamente", "nova tentativa")),
)


def fold(text: str) -> str:
    """Lower case without accents: "Conexão" and "conexao" are the same word here."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    compiled = []
    for english, portuguese in GROUPS:
        for side, other in ((english, portuguese), (portuguese, english)):
            alternatives = "|".join(re.escape(fold(term)) for term in sorted(side, key=len, reverse=True))
            compiled.append((re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"), other))
    return tuple(compiled)


def expand(text: str, *, question: bool = False) -> str:
    """``text`` followed by the other language's terms for the operations words it contains
    (for a ``question``, the first term of each group only)."""
    folded = fold(text)
    extra: list[str] = []
    for pattern, other in _patterns():
        if not pattern.search(folded):
            continue
        terms = other[0] if question else " ".join(other)
        if terms not in extra:
            extra.append(terms)
    return f"{text}\n{' '.join(extra)}" if extra else text
