"""What the bot says, in English and Brazilian Portuguese.

One catalogue, keyed by message id, so a reply never mixes languages and translators find every
sentence in one place. ``say(lang, key, **values)`` falls back to English. ``quote_answer`` is how
TWS's own words are put in front of people (a chat reply, a channel notice): the same bounded,
credential-free quote wherever they appear.
"""

from __future__ import annotations

import re
from typing import Any

from bot.logs import REDACTED, Scrubber

MAX_ANSWER = 200  # characters of TWS's own error message quoted to people

#: ``password=...``, ``token: ...`` and the like inside a message; the value goes, the name stays.
_SECRET_PAIR = re.compile(r"(?i)\b(pass(?:word|wd)?|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)([^\s,;]+)")

_TEXTS: dict[str, tuple[str, str]] = {
    # key: (English, Portuguese)
    "not_understood": ("I didn't get that. Try for example:", "Não entendi. Experimente, por exemplo:"),
    "llm_words": ("🤖 The language model's reading of the answer above (not TWS data): {text}",
                  "🤖 Leitura do modelo de linguagem sobre a resposta acima (não são dados do TWS): {text}"),
    "understood_as": ("You wrote “{said}” — I understood: {action} {job}.",
                      "Você escreveu “{said}” — entendi: {action} {job}."),
    "llm_fallback": ("(The language model is unavailable right now; I used my built-in rules.)",
                     "(O modelo de linguagem está indisponível agora; usei minhas regras internas.)"),
    "need_job": ("Which job? Say for example `status PAYROLL_DAILY.EXTRACT01`.",
                 "Qual job? Diga por exemplo `status PAYROLL_DAILY.EXTRACT01`."),
    "need_stream": ("Which job stream?", "Qual job stream?"),
    "job_not_found": ("I can't find a job called `{name}` in the current plan.",
                      "Não encontrei nenhum job chamado `{name}` no plano atual."),
    "did_you_mean": ("I can't find `{name}` in the current plan. Did you mean one of these?",
                     "Não encontrei `{name}` no plano atual. Você quis dizer um destes?"),
    "ambiguous": ("`{name}` matches {count} jobs in the current plan. Which one?",
                  "`{name}` corresponde a {count} jobs no plano atual. Qual deles?"),
    "ambiguous_more": ("Showing {shown} of {count}: name the stream to narrow it, e.g. `STREAM.{job}`.",
                       "Mostrando {shown} de {count}: informe a stream para filtrar, por exemplo `STREAM.{job}`."),
    "stream_not_found": ("I can't find a job stream called `{name}` in the current plan.",
                         "Não encontrei nenhuma job stream chamada `{name}` no plano atual."),
    "tws_down": ("TWS is not reachable right now ({detail}). I'll keep trying; nothing was changed.",
                 "O TWS não está acessível agora ({detail}). Vou continuar tentando; nada foi alterado."),
    "tws_auth": ("TWS refused Resync's credentials. Ask an administrator to check TWS_USER / TWS_API_KEY.",
                 "O TWS recusou as credenciais do Resync. Peça a um administrador para verificar TWS_USER / TWS_API_KEY."),
    "tws_forbidden": ("TWS says Resync's user may not do that.", "O TWS diz que o usuário do Resync não pode fazer isso."),
    "tws_error": ("TWS answered with an error: {detail}", "O TWS respondeu com um erro: {detail}"),
    "tws_error_held": ("TWS answered its last requests with an error, so Resync sends it nothing for about {seconds} s "
                       "to spare it (circuit breaker); nothing was changed. TWS said: {detail}",
                       "O TWS respondeu às últimas requisições com um erro, então o Resync não lhe envia nada por "
                       "cerca de {seconds} s para poupá-lo (circuit breaker); nada foi alterado. O TWS disse: {detail}"),
    "store_down": ("My state store is unavailable, so I cannot take actions safely right now (reads still work). "
                   "Nothing was changed; try again in a moment.",
                   "Meu armazenamento de estado está indisponível, então não posso executar ações com segurança agora "
                   "(consultas continuam funcionando). Nada foi alterado; tente de novo em instantes."),
    "internal_error": ("Something went wrong on my side; it has been logged (ref {ref}).",
                       "Algo deu errado do meu lado; foi registrado (ref {ref})."),
    "working": ("Working on it…", "Trabalhando nisso…"),
    "working_on": ("Working on `{text}`…", "Trabalhando em `{text}`…"),
    "cut_lines_after": ("… ({count} more lines cut)", "… (mais {count} linhas cortadas)"),
    "cut_lines_before": ("… ({count} earlier lines cut)", "… ({count} linhas anteriores cortadas)"),
    "cut_fields": ("… {count} more fields cut", "… mais {count} campos cortados"),
    "denied_read": ("Sorry, you are not allowed to use Resync yet. Ask an administrator to add you to the policy.",
                    "Desculpe, você ainda não tem permissão para usar o Resync. Peça a um administrador para incluí-lo na política."),
    "denied_action": ("You are not allowed to {action} `{job}` ({reason}).",
                      "Você não tem permissão para {action} `{job}` ({reason})."),
    "policy_unknown_user": ("unknown user", "usuário desconhecido"),
    "policy_no_read": ("no role grants reading", "nenhum papel permite leitura"),
    "policy_known_user": ("known user", "usuário conhecido"),
    "policy_granted": ("granted by role {role}", "permitido pelo papel {role}"),
    "policy_no_grant": ("no role grants {action} on {job}", "nenhum papel permite {action} em {job}"),
    "confirm_title": ("Confirm: {action} {job}", "Confirme: {action} {job}"),
    "confirm_text": ("{meaning}\nThis request expires in {expires}.",
                     "{meaning}\nEste pedido expira em {expires}."),
    "confirm_console": ("Confirm? [y/N]", "Confirma? [s/N]"),
    "console_alert": ("[ALERT]", "[ALERTA]"),
    "console_button": ("button: {label}", "botão: {label}"),
    "console_update": ("[UPDATE {ref}]", "[ATUALIZAÇÃO {ref}]"),
    "ask_reason": ("The policy asks for a reason before I {action} `{job}`. Reply in this conversation with the reason.",
                   "A política exige uma justificativa antes de {action} `{job}`. Responda nesta conversa com o motivo."),
    "reason_wildcard": ("wildcards are not accepted for actions: name one job",
                        "curingas não são aceitos em ações: informe um único job"),
    "reason_thin": ("That is too short to be a reason. Say in a few words why (for example “the input file arrived late, "
                    "the fix is deployed”), or reply `cancel` to drop the request.",
                    "Isso é curto demais para ser uma justificativa. Diga em poucas palavras por quê (por exemplo “o arquivo "
                    "de entrada chegou atrasado, a correção já foi aplicada”), ou responda `cancelar` para desistir do pedido."),
    "reason_still_waiting": ("(The {action} of `{job}` is still waiting for your reason: reply with it, or `cancel`.)",
                             "(O pedido para {action} `{job}` ainda aguarda sua justificativa: responda com ela, ou `cancelar`.)"),
    "confirmed_running": ("{action} of `{job}` confirmed by {user}; sending it to TWS…",
                          "{action} de `{job}` confirmado por {user}; enviando ao TWS…"),
    "action_done": ("TWS accepted the {action} of `{job}`. {detail}", "O TWS aceitou: {action} de `{job}`. {detail}"),
    "action_invalid": ("TWS refused to {action} `{job}` in its current state: {detail}",
                       "O TWS recusou {action} `{job}` no estado atual: {detail}"),
    "action_unknown": ("I sent the {action} of `{job}` but TWS's answer was lost. Check its status before trying again: "
                       "`status {job}`.",
                       "Enviei o pedido ({action} de `{job}`), mas a resposta do TWS se perdeu. Verifique o status antes de "
                       "tentar de novo: `status {job}`."),
    "action_failed": ("The {action} of `{job}` failed: {detail}", "Falhou ({action} de `{job}`): {detail}"),
    "already_done": ("This request was already handled.", "Este pedido já foi tratado."),
    # What is known of an action already confirmed (bot.actions; answered from the local journal).
    "in_progress": ("This request is being handled right now.", "Este pedido está sendo tratado neste momento."),
    "handled_ok": ("This request was already handled: TWS accepted the {action} of `{job}`.",
                   "Este pedido já foi tratado: o TWS aceitou ({action} de `{job}`)."),
    "handled_refused": ("This request was already handled: TWS refused it ({detail}).",
                        "Este pedido já foi tratado: o TWS recusou ({detail})."),
    "handled_unknown": ("This request was already handled: TWS was asked for the {action} of `{job}`, but its answer "
                        "never came back, so I do not know whether it ran. Check `status {job}` before asking again.",
                        "Este pedido já foi tratado: o TWS recebeu o pedido ({action} de `{job}`), mas a resposta nunca "
                        "chegou, então não sei se foi executado. Verifique `status {job}` antes de pedir de novo."),
    "handled_error": ("This request was already handled: the request to TWS failed ({detail}).",
                      "Este pedido já foi tratado: o pedido ao TWS falhou ({detail})."),
    "kept_locally": ("(My state store is unreachable: this outcome is kept on this server and recorded in the store "
                     "and the audit log as soon as the store is back.)",
                     "(Meu armazenamento de estado está inacessível: este resultado fica guardado neste servidor e será "
                     "registrado no armazenamento e no log de auditoria assim que ele voltar.)"),
    "expired": ("This confirmation has expired or was already handled. Ask again if it is still needed.",
                "Esta confirmação expirou ou já foi tratada. Peça de novo se ainda for necessário."),
    "not_yours": ("Only the requester or someone allowed to {action} this job can confirm it.",
                  "Só quem pediu ou alguém autorizado a {action} este job pode confirmar."),
    "cancelled": ("Cancelled: nothing was sent to TWS.", "Cancelado: nada foi enviado ao TWS."),
    "no_kb": ("No knowledge base is configured yet, so I can't search runbooks. Try `log JOB` to see the error.",
              "Ainda não há base de conhecimento configurada, então não posso buscar runbooks. Tente `log JOB` para ver o erro."),
    "no_jobs": ("No jobs match{what}.", "Nenhum job corresponde{what}."),
    "jobs_found": ("{count} job(s){what}:", "{count} job(s) encontrado(s){what}:"),
    "jobs_counted": ("{count} job(s) in the current plan{what}.", "{count} job(s) no plano atual{what}."),
    "more_jobs": ("…and {more} more.", "…e mais {more}."),
    "more_streams": ("Showing {shown} of {count} job stream instances with that name.",
                     "Mostrando {shown} de {count} instâncias de job stream com esse nome."),
    "bad_status": ("`{status}` is not a job status I can filter on; I know {known}.",
                   "`{status}` não é um status de job que eu saiba filtrar; conheço {known}."),
    "place_not_found": ("I know no workstation or job stream called `{name}` in the current plan.",
                        "Não conheço nenhuma workstation nem job stream chamada `{name}` no plano atual."),
    "did_you_mean_short": ("Did you mean one of these?", "Você quis dizer um destes?"),
    "not_a_job_workstation": ("`{name}` is a workstation, not a job.", "`{name}` é uma workstation, não um job."),
    "not_a_job_stream": ("`{name}` is a job stream, not a job.", "`{name}` é uma job stream, não um job."),
    "kind_workstation": ("workstation", "workstation"),
    "kind_stream": ("job stream", "job stream"),
    "where_stream": ("in job stream {name}", "na job stream {name}"),
    "where_workstation": ("on workstation {name}", "na workstation {name}"),
    "where_name": ("named {name}", "com nome {name}"),
    "cant_answer": ("I can't answer that yet: {what}. I can see today's plan only: failed, running, held, pending or "
                    "late jobs, counts, one job's status or log, a job stream, and whether TWS is up.",
                    "Ainda não sei responder isso: {what}. Só vejo o plano atual: jobs com falha, em execução, em espera, "
                    "pendentes ou atrasados, contagens, o status ou o log de um job, uma job stream e se o TWS está no ar."),
    "cant_history": ("I only see the current plan, not earlier plans (\"{word}\")", "só vejo o plano atual, não planos anteriores (\"{word}\")"),
    "cant_filter": ("I can't filter jobs by \"{word}\"", "não sei filtrar jobs por \"{word}\""),
    # status glosses (TWS says the status itself: ABEND, HOLD...; the gloss is in the user's language)
    "st_FAILED": ("failed", "com falha"), "st_LATE": ("late", "atrasados"),
    "st_ABEND": ("ended in error", "terminou com erro"), "st_FAIL": ("could not start", "não pôde iniciar"),
    "st_ERROR": ("error", "erro"), "st_EXEC": ("running", "em execução"), "st_HOLD": ("on hold", "em espera"),
    "st_PEND": ("pending confirmation", "aguardando confirmação"), "st_READY": ("ready", "pronto"),
    "st_SUCC": ("successful", "concluído com sucesso"), "st_CANCL": ("cancelled", "cancelado"),
    "st_SCHED": ("scheduled", "agendado"), "st_WAIT": ("waiting", "aguardando"), "st_INTRO": ("starting", "iniciando"),
    "st_SUPPR": ("suppressed", "suprimido"), "st_DONE": ("done", "finalizado"), "st_ADD": ("added", "adicionado"),
    "st_FENCE": ("below the fence", "abaixo do fence"), "st_EXTRN": ("external", "externo"),
    "st_BOUND": ("bound", "vinculado"), "st_ABENP": ("abend pending", "abend pendente"),
    "st_SUCCP": ("success pending", "sucesso pendente"),
    "coarse_Error": ("Error", "Erro"), "coarse_Successful": ("Successful", "Sucesso"), "coarse_Running": ("Running", "Executando"),
    "coarse_Waiting": ("Waiting", "Aguardando"), "coarse_Ready": ("Ready", "Pronto"), "coarse_Held": ("Held", "Retido"),
    "coarse_Blocked": ("Blocked", "Bloqueado"), "coarse_Canceled": ("Cancelled", "Cancelado"),
    "coarse_Undecided": ("Undecided", "Indefinido"), "coarse_Suppressed": ("Suppressed", "Suprimido"),
    "f_late": ("Late", "Atrasado"), "yes": ("yes", "sim"),
    "log_title": ("Log of {job} (run {run})", "Log de {job} (execução {run})"),
    "log_cut": ("Last {shown} of {total} lines.", "Últimas {shown} de {total} linhas."),
    "log_empty": ("TWS returned an empty log for `{job}`.", "O TWS devolveu um log vazio para `{job}`."),
    "health_ok": ("TWS is up.", "O TWS está no ar."),
    "health_down": ("TWS is NOT reachable: {detail}", "O TWS NÃO está acessível: {detail}"),
    "stream_title": ("Job stream {stream}", "Job stream {stream}"),
    "help_title": ("What I can do", "O que eu sei fazer"),
    "help_text": (
        "Ask me in English or Portuguese, or use commands:\n"
        "• `status JOB` — a job's status  • `log JOB` — the end of its log\n"
        "• `failures` — what failed  • `jobs [STATUS] [stream S]` — list jobs\n"
        "• `stream NAME` — a job stream  • `health` — is TWS up?\n"
        "• `rerun JOB`, `hold JOB`, `release JOB`, `cancel JOB` — always asked to confirm\n"
        "JOB can be `JOB`, `STREAM.JOB` or `WS#STREAM.JOB`.",
        "Pergunte em português ou inglês, ou use comandos:\n"
        "• `status JOB` — status de um job  • `log JOB` — o fim do log\n"
        "• `failures` — o que falhou  • `jobs [STATUS] [stream S]` — lista jobs\n"
        "• `stream NOME` — uma job stream  • `health` — o TWS está no ar?\n"
        "• `rerun JOB`, `hold JOB`, `release JOB`, `cancel JOB` — sempre com confirmação\n"
        "JOB pode ser `JOB`, `STREAM.JOB` ou `WS#STREAM.JOB`."),
    "btn_confirm": ("Confirm", "Confirmar"),
    "btn_cancel": ("Cancel", "Cancelar"),
    "btn_log": ("Show log", "Ver log"),
    "btn_rerun": ("Rerun", "Reexecutar"),
    "btn_status": ("Status", "Status"),
    # action names as verbs, and what each means in the job's state
    "verb_rerun": ("rerun", "reexecutar"),
    "verb_hold": ("hold", "segurar"),
    "verb_release": ("release", "liberar"),
    "verb_cancel": ("cancel", "cancelar"),
    "mean_rerun": ("`{job}` is {status}{rc}. A rerun starts a new run of it now; its successors wait for the new result.",
                   "`{job}` está {status}{rc}. Uma reexecução inicia uma nova execução agora; os sucessores aguardam o novo resultado."),
    "mean_hold": ("`{job}` is {status}. Holding it keeps it from starting until someone releases it.",
                  "`{job}` está {status}. Segurá-lo impede que inicie até alguém liberá-lo."),
    "mean_release": ("`{job}` is {status}. Releasing it lets it start as soon as its other dependencies allow.",
                     "`{job}` está {status}. Liberá-lo permite que inicie assim que as outras dependências permitirem."),
    "mean_cancel": ("`{job}` is {status}. Cancelling it means it will not run in this plan; its successors are released.",
                    "`{job}` está {status}. Cancelá-lo significa que não rodará neste plano; os sucessores são liberados."),
    "state_warning": ("⚠️ TWS will probably refuse this: {verb} is not allowed for a job in {status}.",
                      "⚠️ O TWS provavelmente vai recusar: {verb} não é permitido para um job em {status}."),
    "noun_rerun": ("rerun", "reexecução"),
    "noun_hold": ("hold", "retenção (hold)"),
    "noun_release": ("release", "liberação"),
    "noun_cancel": ("cancellation", "cancelamento"),
    "f_status": ("Status", "Status"), "f_rc": ("Return code", "Código de retorno"),
    "f_stream": ("Stream", "Stream"), "f_ws": ("Workstation", "Workstation"),
    "f_sched": ("Scheduled", "Agendado"), "f_start": ("Started", "Início"), "f_end": ("Ended", "Fim"),
    "f_reruns": ("Reruns", "Reexecuções"), "f_reason": ("Reason", "Motivo"),
    "f_version": ("Version", "Versão"), "f_breaker": ("Circuit breaker", "Circuit breaker"),
    "f_server": ("Server", "Servidor"), "f_timezone": ("Time zone", "Fuso horário"), "f_jobs": ("Jobs", "Jobs"),
    "requested_by": ("requested by {user}", "pedido por {user}"),
    # proactive failure alerts (bot/alerts/compose.py); TWS status words (ABEND, SUCC, PEND...) stay as TWS says them
    "alert_label_recovered": ("RECOVERED", "RECUPERADO"),
    "alert_label_rerunning": ("RERUNNING", "REEXECUTANDO"),
    "alert_label_cancelled": ("CANCELLED", "CANCELADO"),
    "alert_label_gone": ("GONE", "FORA DO PLANO"),
    "alert_label_late": ("LATE", "ATRASADO"),
    "alert_needs_confirmation": (" (needs confirmation)", " (precisa de confirmação)"),
    "alert_where": ("{name} in stream {stream} on {workstation}", "{name} na stream {stream} em {workstation}"),
    "alert_pend": ("{where} completed and is waiting for an operator to confirm it (PEND).",
                   "{where} terminou e aguarda a confirmação de um operador (PEND)."),
    "alert_late": ("{where} is running late (started {start}).", "{where} está atrasado (iniciou em {start})."),
    "alert_ended": ("{where} ended {status}{rc}.", "{where} terminou em {status}{rc}."),
    "alert_rc": (" with return code {rc}", " com código de retorno {rc}"),
    "alert_blocked": (" {count} successor job(s) are blocked.", " {count} sucessor(es) bloqueado(s)."),
    "alert_failed_times": (" It has failed {count} times in this plan.", " Já falhou {count} vezes neste plano."),
    "alert_recovered_prefix": ("Recovered: run {run} ended {status} at {end}. ",
                               "Recuperado: a execução {run} terminou em {status} (fim: {end}). "),
    "alert_rerunning_prefix": ("Rerun {run} is {status}. ", "A reexecução {run} está em {status}. "),
    "alert_cancelled_prefix": ("The job was cancelled. ", "O job foi cancelado. "),
    "alert_gone_prefix": ("The job is no longer in the current plan. ", "O job não está mais no plano atual. "),
    "alert_runbook": ("\n📘 Runbook: {runbook}", "\n📘 Runbook: {runbook}"),
    "alert_f_job": ("Job", "Job"),
    "alert_f_blocked": ("Blocked successors", "Sucessores bloqueados"),
    "alert_error_lines": ("Error lines from the job log", "Linhas de erro do log do job"),
    "alert_acked_by_at": ("Acknowledged by {user} at {at}", "Reconhecido por {user} em {at}"),
    "alert_snoozed_by_until": ("Snoozed by {user} until {until}", "Adiado por {user} até {until}"),
    "alert_last_action": ("Last action: {tool} by {actor} ({outcome})", "Última ação: {action} por {actor} ({outcome})"),
    "alert_btn_ack": ("Acknowledge", "Reconhecer"),
    "alert_btn_ack_all": ("Acknowledge all", "Reconhecer todos"),
    "alert_btn_snooze_1h": ("Snooze 1 h", "Adiar 1 h"),
    "alert_btn_snooze_24h": ("Snooze 24 h", "Adiar 24 h"),
    "alert_group_title": ("{count} failures in job stream {stream}", "{count} falhas na job stream {stream}"),
    "alert_group_text": ("{count} jobs of {stream} failed within a few minutes; they are grouped here to cut the noise "
                         "({open} still open). Recoveries and repeat failures go in this thread.",
                         "{count} jobs de {stream} falharam em poucos minutos; estão agrupados aqui para reduzir o ruído "
                         "({open} ainda em aberto). Recuperações e novas falhas vão para esta thread."),
    "alert_group_text_earlier": ("{total} failures in job stream {stream} within {minutes} min ({earlier} already alerted "
                                 "above, each in its own thread); the other {count} are grouped here to cut the noise "
                                 "({open} still open). Their recoveries and repeat failures go in this thread.",
                                 "{total} falhas na job stream {stream} em {minutes} min ({earlier} já alertadas acima, "
                                 "cada uma em sua própria thread); as outras {count} estão agrupadas aqui para reduzir o "
                                 "ruído ({open} ainda em aberto). Recuperações e novas falhas delas vão para esta thread."),
    "alert_group_alerted_above": (" (alerted separately above)", " (alertado separadamente acima)"),
    "alert_group_more": ("… and {count} more", "… e mais {count}"),
    "alert_acked_by": ("Acknowledged by {user}", "Reconhecido por {user}"),
    "alert_failed_again": ("🔴 {job} failed again: run {run} ended {status}{rc} (failure {count} in this plan).",
                           "🔴 {job} falhou de novo: a execução {run} terminou em {status}{rc} (falha {count} neste plano)."),
    "alert_also_failed": ("🔴 Also failed: {job} — {status}{rc}", "🔴 Também falhou: {job} — {status}{rc}"),
    "alert_step_rerunning": ("🔁 {job}: rerun {run} started ({status}).", "🔁 {job}: reexecução {run} iniciada ({status})."),
    "alert_step_recovered": ("✅ {job} recovered: run {run} ended {status} at {end}.",
                             "✅ {job} recuperado: a execução {run} terminou em {status} (fim: {end})."),
    "alert_step_cancelled": ("⚪ {job} was cancelled.", "⚪ {job} foi cancelado."),
    "alert_step_gone": ("⚫ {job} is no longer in the current plan.", "⚫ {job} não está mais no plano atual."),
    "alert_acknowledged": ("👍 Acknowledged by {user}", "👍 Reconhecido por {user}"),
    "alert_snoozed": ("😴 Snoozed for {hours} h by {user} (until {until}): repeat failures stay quiet.",
                      "😴 {user} adiou os alertas por {hours} h (até {until}): falhas repetidas ficam em silêncio."),
    "alert_action_note": ("🛠️ {actor} ran {verb}: {outcome}", "🛠️ {actor} solicitou {action}: {outcome}"),
    "alert_act_rerun": ("rerun", "reexecução"),
    "alert_act_hold": ("hold", "retenção"),
    "alert_act_release": ("release", "liberação"),
    "alert_act_cancel": ("cancel", "cancelamento"),
    "alert_outcome_ok": ("ok", "ok"),
    "alert_outcome_unknown": ("unknown", "resposta do TWS perdida"),
    "alert_outcome_refused": ("refused: {detail}", "recusado: {detail}"),
    "alert_outcome_error": ("error: {detail}", "erro: {detail}"),
    "alert_tws_down_title": ("⚠️ TWS unreachable", "⚠️ TWS inacessível"),
    "alert_tws_down_text": ("Resync cannot reach TWS since {since}. Failure alerts are delayed; "
                            "failures that happen meanwhile will be alerted when it is back.",
                            "O Resync não consegue acessar o TWS desde {since}. Os alertas de falha estão atrasados; "
                            "as falhas que ocorrerem nesse meio-tempo serão alertadas quando ele voltar."),
    "alert_tws_up_title": ("✅ TWS reachable again", "✅ TWS acessível novamente"),
    "alert_tws_up_text": ("TWS answers again after about {minutes} min. Checking for failures that happened meanwhile.",
                          "O TWS voltou a responder após cerca de {minutes} min. Verificando as falhas que ocorreram "
                          "nesse meio-tempo."),
    "alert_tws_error_title": ("⚠️ TWS is answering with errors", "⚠️ O TWS está respondendo com erros"),
    "alert_tws_error_text": ("Since {since} TWS answers Resync's polls with an error: “{answer}”. Failure alerts are "
                             "delayed; failures that happen meanwhile will be alerted when TWS answers normally again.",
                             "Desde {since} o TWS responde às consultas do Resync com um erro: “{answer}”. Os alertas "
                             "de falha estão atrasados; as falhas que ocorrerem nesse meio-tempo serão alertadas quando "
                             "o TWS voltar a responder normalmente."),
    "alert_tws_ok_title": ("✅ TWS answering normally again", "✅ O TWS voltou a responder normalmente"),
    "alert_tws_ok_text": ("TWS answers without errors again after about {minutes} min. Checking for failures that "
                          "happened meanwhile.",
                          "O TWS voltou a responder sem erros após cerca de {minutes} min. Verificando as falhas que "
                          "ocorreram nesse meio-tempo."),
    "alert_untracked": ("This alert is no longer tracked (it may be from an older plan).",
                        "Este alerta não é mais acompanhado (pode ser de um plano anterior)."),
    "alert_already_acked": ("Already acknowledged by {user}.", "Já reconhecido por {user}."),
    "alert_someone": ("someone", "alguém"),
    "alert_you_acked_job": ("Acknowledged {job}.", "{job} reconhecido."),
    "alert_you_acked_group": ("Acknowledged the group.", "Grupo reconhecido."),
    # TWS wire conformance (issue 8): logs that are not there yet, successors nobody could count.
    "log_not_ready": ("The log of `{job}` is not available yet: TWS has not retrieved it from the agent. "
                      "Try again in a minute.",
                      "O log de `{job}` ainda não está disponível: o TWS ainda não o obteve do agente. "
                      "Tente de novo em um minuto."),
    "log_unavailable": ("I could not fetch the log of `{job}`: {reason}", "Não consegui obter o log de `{job}`: {reason}"),
    "log_cut_unknown": ("Last {shown} lines.", "Últimas {shown} linhas."),
    "alert_log_not_ready": ("\nError lines: not available yet (TWS has not retrieved the job log; use the Log button later).",
                            "\nLinhas de erro: ainda não disponíveis (o TWS ainda não obteve o log do job; use o botão "
                            "Log mais tarde)."),
    "alert_log_unavailable": ("\nError lines: unknown (the job log could not be fetched: {reason}).",
                              "\nLinhas de erro: desconhecidas (não foi possível obter o log do job: {reason})."),
    "alert_blocked_unknown": (" Successors unknown: TWS could not say which jobs wait for it.",
                              " Sucessores desconhecidos: o TWS não informou quais jobs dependem dele."),
    "alert_unknown": ("unknown", "desconhecido"),
    "f_successors": ("Successors", "Sucessores"),
    "successors_count": ("{count} ({waiting} waiting)", "{count} ({waiting} aguardando)"),
    "successors_unknown": ("unknown (TWS could not say)", "desconhecidos (o TWS não informou)"),
    "kb_title": ("📘 Runbooks", "📘 Runbooks da operação"),
    "kb_passages": ("From the runbooks:", "Dos runbooks:"),
    "kb_weak": ("No runbook clearly matches; the closest passages are:",
                "Nenhum runbook corresponde claramente; os trechos mais próximos são:"),
    "kb_idk": ("I don't know: the runbooks don't answer this.", "Não sei: os runbooks não respondem a isso."),
    "kb_sources": ("Sources:", "Fontes:"),
    "kb_empty": ("The knowledge base is empty: ingest runbooks with `resync kb ingest PATH`.",
                 "A base de conhecimento está vazia: importe runbooks com `resync kb ingest PATH`."),
    "kb_unavailable": ("The knowledge base is unavailable right now: {detail}",
                       "A base de conhecimento está indisponível agora: {detail}"),
    "kb_why": ("📘 Runbook: {runbook}", "📘 Runbook da operação: {runbook}"),
    "alert_you_snoozed": ("Snoozed for {hours} h: repeat failures stay quiet until then.",
                          "Adiado por {hours} h: falhas repetidas ficam em silêncio até lá."),
    # --- alerts at production scale: baseline, flood guard, plan turnover, late/long, PEND and kill
    "alert_baseline_title_start": ("{what} when Resync started", "{what} quando o Resync iniciou"),
    "alert_baseline_title_plan": ("{what} when Resync first saw this plan",
                                  "{what} quando o Resync viu este plano pela primeira vez"),
    # {what} of the two titles above: failures counted as failures, PEND / late / long jobs as needing attention
    "alert_baseline_failed": ("{failed} jobs had already failed", "{failed} jobs já tinham falhado"),
    "alert_baseline_failed_attention": ("{failed} jobs had already failed and {attention} needed attention",
                                        "{failed} jobs já tinham falhado e {attention} precisavam de atenção"),
    "alert_baseline_attention": ("{attention} jobs needed attention", "{attention} jobs precisavam de atenção"),
    "alert_baseline_text": ("They are not alerted one by one ({open} still failed), the worst first. A job that fails "
                            "again or that someone acts on gets its own alert.",
                            "Eles não são alertados um a um ({open} ainda com falha), os piores primeiro. Um job que "
                            "falhar de novo ou em que alguém agir recebe seu próprio alerta."),
    "alert_baseline_text_mixed": ("They are not alerted one by one ({open} still failed, {attention} still need "
                                  "attention), the worst first. A job that fails again or that someone acts on gets "
                                  "its own alert.",
                                  "Eles não são alertados um a um ({open} ainda com falha, {attention} ainda precisam "
                                  "de atenção), os piores primeiro. Um job que falhar de novo ou em que alguém agir "
                                  "recebe seu próprio alerta."),
    "alert_baseline_hint": ("Ask “which jobs failed?” to list them all.",
                            "Pergunte “quais jobs falharam?” para ver a lista completa."),
    "alert_baseline_hint_failures": ("Ask “which jobs failed?” to list all the failures.",
                                     "Pergunte “quais jobs falharam?” para ver todas as falhas."),
    "alert_flood_title": ("{count} more failures for this channel", "Mais {count} falhas para este canal"),
    "alert_flood_text": ("More than {limit} alerts for this channel within {minutes} min, across job streams: the rest "
                         "are listed here and this message is updated as more arrive ({open} still open).",
                         "Mais de {limit} alertas para este canal em {minutes} min, em várias job streams: os demais "
                         "estão listados aqui e esta mensagem é atualizada conforme chegam outros ({open} ainda em "
                         "aberto)."),
    "alert_step_gone_plan": ("⚫ {job}: the plan changed (a new plan replaced the one this failure was in); "
                             "this alert is closed.",
                             "⚫ {job}: o plano mudou (um novo plano substituiu aquele em que esta falha ocorreu); "
                             "este alerta foi encerrado."),
    "alert_gone_plan_prefix": ("Closed: the plan changed. ", "Encerrado: o plano mudou. "),
    "alert_label_long": ("RUNNING LONG", "EXECUÇÃO LONGA"),
    "alert_label_deadline": ("PAST DEADLINE", "PRAZO ESTOURADO"),
    "alert_label_nostart": ("NOT STARTED", "NÃO INICIADO"),
    "alert_long": ("{where} has been running for {ran}, more than {factor:g}× its estimated {estimate}.",
                   "{where} está em execução há {ran}, mais de {factor:g}× a duração estimada de {estimate}."),
    "alert_deadline": ("{where} is still {status} past its deadline ({deadline}).",
                       "{where} ainda está em {status} após o prazo ({deadline})."),
    "alert_nostart": ("{where} has not started by its latest start time ({latest}); it is {status}.",
                      "{where} não iniciou até o horário limite de início ({latest}); está em {status}."),
    "alert_step_started": ("▶️ {job} started at last (run {run}, {status}).",
                           "▶️ {job} finalmente iniciou (execução {run}, {status})."),
    "alert_step_finished": ("✅ {job} finished: run {run} ended {status} at {end}.",
                            "✅ {job} terminou: a execução {run} terminou em {status} (fim: {end})."),
    "alert_btn_confirm_succ": ("Confirm success", "Confirmar sucesso"),
    "alert_btn_confirm_abend": ("Confirm abend", "Confirmar abend"),
    "alert_btn_kill": ("Kill", "Matar (kill)"),
    "alert_act_confirm": ("confirmation", "confirmação"),
    "verb_confirm": ("confirm", "confirmar"),
    "noun_confirm": ("confirmation", "confirmação"),
    "verb_kill": ("kill", "matar (kill)"),
    "noun_kill": ("kill", "encerramento forçado (kill)"),
    "mean_confirm_succ": ("`{job}` is {status}{rc}. Confirming it as successful ends it SUCC; its successors are "
                          "released.", "`{job}` está em {status}{rc}. Confirmar como sucesso o encerra em SUCC; seus "
                          "sucessores são liberados."),
    "mean_confirm_abend": ("`{job}` is {status}{rc}. Confirming it as abended ends it ABEND; its successors stay "
                           "held.", "`{job}` está em {status}{rc}. Confirmar como abend o encerra em ABEND; seus "
                           "sucessores continuam retidos."),
    "mean_kill": ("`{job}` is {status}. Killing it stops the running job now: it ends ABEND and its successors stay "
                  "held.", "`{job}` está em {status}. Matar (kill) interrompe o job agora: ele termina em ABEND e seus "
                  "sucessores continuam retidos."),
    "digest_title": ("Daily alert digest — {day} ({tz})", "Resumo diário de alertas — {day} ({tz})"),
    "digest_text": ("In the last 24 hours: {failures} failures, {recoveries} recovered, {still} still failing.",
                    "Nas últimas 24 horas: {failures} falhas, {recoveries} recuperadas, {still} ainda com falha."),
    "digest_top": ("Job streams that failed most:", "Job streams que mais falharam:"),
    "digest_f_failures": ("Failures", "Falhas"),
    "digest_f_reruns": ("Reruns", "Reexecuções"),
    "digest_f_recoveries": ("Recoveries", "Recuperações"),
    "digest_f_still": ("Still failing", "Ainda com falha"),
    "digest_f_recover": ("Time to recover (median)", "Tempo até recuperar (mediana)"),
    "digest_no_recovery": ("no recovery yet", "nenhuma recuperação ainda"),
    "digest_per_hour": ("Failures / recoveries per hour:", "Falhas / recuperações por hora:"),
    "digest_hour_axis": ("hour ({tz})", "hora ({tz})"),
    "alert_act_kill": ("kill", "encerramento forçado (kill)"),
}


def has_text(key: str) -> bool:
    return key in _TEXTS


def say(lang: str, key: str, **values: Any) -> str:
    english, portuguese = _TEXTS[key]
    text = portuguese if lang == "pt" else english
    return text.format(**values) if values else text


def quote_answer(answer: str) -> str:
    """TWS's own words for people: one line of at most ``MAX_ANSWER`` characters, credentials cut out.

    A chat or a channel is a wider audience than a log: an answer echoing an Authorization header,
    a token or a ``password=`` must not carry it there. Quoting twice changes nothing.
    """
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", " ".join(answer.split()))
    text = Scrubber().text(text)
    return text if len(text) <= MAX_ANSWER else text[:MAX_ANSWER - 1].rstrip() + "…"
