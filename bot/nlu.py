"""Understanding a message without an LLM: the command grammar, then bilingual rules.

The agent core asks this module first. It is instant, free and predictable, and it is all the
understanding there is when no LLM is configured or the LLM fails. Two layers:

* ``parse_command``: the terse grammar shared by slash commands and mentions (``status JOB``,
  ``rerun WS#STREAM.JOB``, ``jobs failed stream S`` ...).
* ``understand``: the grammar, then keyword rules for English and Brazilian Portuguese as
  operators type them (accents or not, "pls", emojis, Slack formatting).

Safety over recall: a state-changing tool (rerun, hold, release, cancel) comes only from an
imperative at the start of a clause that names a job or points back at one ("rerun it"). Negated,
questioning, how-to or bulk sentences ("don't cancel anything", "did you rerun X?", "how do I
rerun a job?", "cancel everything") never produce one; the core still asks for confirmation.

Everything is precompiled regexes over a folded copy of the text (lower case, accents removed,
job names replaced by a marker), so a message costs tens of microseconds.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass

from bot.errors import JobNotFound
from bot.tools import Intent
from bot.tws.names import JobRef, parse_job_ref

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

# Words that are never job names, even typed in upper case ("rerun it NOW", "jobs HOLD", "TWS").
_COMMON = frozenset("""
a an the this that these those it its it's he she they them we you u i me my mine our your his her
is are was were be been being am do does did done doing have has had will would can could should
shall may might must not no yes ok okay sure and or but so then than too also just only still yet
already again now today tonight yesterday tomorrow here there where when why how what what's whats
which who whom whose all any anything everything nothing something some every each one none same
of in on at to for from by with without into onto about over under after before up down off out
please pls plz thanks thank thx ty hey hi hello bot resync asap urgent fyi btw eod
job jobs log logs status state stream streams jobstream schedule workstation ws agent agents
tws hwa ibm hcl engine server master plan api ftp sftp sap etl db sql http ssh url rc cc id ip
prod dev qa uat hml dns vpn
rerun re-run rerrun run runs ran running restart retry resubmit reprocess relaunch start stop
hold held holding release released releasing cancel cancelled canceled cancelling abort kill
show list tell give get check see look find display print
fail fails failed failing failure failures abend abends abended abending error errors errored
broken broke crash crashed succ success succeeded successful complete completed finish finished
exec executing ready waiting wait pend pending cancl suppr intro sched extrn add fail done
late long slow stuck blocked red green ok
help commands command menu
last latest first next previous whole entire other another daily nightly
o os as um uma uns umas e ou de da do das dos no na nos nas em ao aos pra pro para por com sem
que quem qual quais quando onde como porque pq por que se mas mais menos muito pouco
ele ela eles elas dele dela deles delas isso isto esse essa este esta aquele aquela mesmo mesma
eu voce vc tu nos me te lhe meu minha seu sua
ser estar esta estao ta tao foi era sao tem tinha ha houve vai vou
sim nao nunca nem nada tudo todos todas algum alguma alguns algumas nenhum nenhuma
hoje ontem amanha agora ja ainda depois antes aqui ali la ai
favor obrigado obrigada valeu oi ola bom boa dia tarde noite
roda rode rodar rodou rodando rodaram reroda rerodar executa execute executar executando
reexecuta reexecute reexecutar reprocessa reprocessar novo novamente vez
segura segure segurar segurado segurados libera libere liberar liberado liberados
cancela cancele cancelar cancelado cancelados aborta abortar mata matar
mostra mostre mostrar lista listar ver veja verifica verificar checa checar
falha falhas falhou falharam falhando abendou abendaram abendado abendados erro erros
parado parados espera pausa pausado concluido concluidos terminado terminados terminou acabou
pronto prontos aguardando esperando pendente pendentes sucesso execucao andamento
log saida situacao estado cadeia fluxo malha flow flows chain chains mdm
ajuda comandos
""".split())

# Slot words: the name after (or before) them is a stream, a workstation, a job.
# Operators call a job stream many things: a flow, a chain, a fluxo, a cadeia, a malha.
_STREAM_WORDS = frozenset({"stream", "jobstream", "job-stream", "streams", "fluxo", "fluxos", "cadeia", "cadeias",
                           "malha", "malhas", "flow", "flows", "chain", "chains"})
_WS_WORDS = frozenset({"workstation", "ws", "agent", "agente", "maquina", "server", "servidor",
                       "host", "cpu", "estacao"})
_JOB_WORDS = frozenset({"job", "tarefa", "task"})
# Only these announce a lower-case name ("the job payroll"); "server" or "agent" are too loose.
_WEAK_SLOTS = frozenset({"job", "stream", "jobstream", "workstation", "ws"})
_WEAK_NOT_NAME = re.compile(r"(?:ing|able|ed|ly|ndo|ado|ido|ada|ida)$")
# ...and only after a determiner ("the job payroll", "do job backup"), not "every job right now".
_WEAK_LEAD = frozenset({"", "the", "a", "o", "do", "da", "de", "of", "for", "pro", "pelo", "no",
                        "na", "that", "this", "esse", "este", "your", "my", "meu", "seu", "status", "is",
                        "esta", "ta"})
_SLOT_FILLERS = frozenset({"the", "a", "an", "o", "da", "do", "de", "status", "named", "called",
                           "chamado", "chamada", "of", "job"})
# A name after one of these, in a list request, is where to look (stream, or workstation for "on").
_LIST_PREPS = frozenset({"in", "na", "no", "nas", "nos", "em", "do", "da", "dos", "das", "of",
                         "from", "inside", "within", "under", "on", "at"})
_WS_PREPS = frozenset({"on", "at"})

# Words allowed before an imperative in its clause: politeness, modals, "dá um rerun".
_ALLOWED_PRE = frozenset("""
please pls plz pf pfv porfa por favor kindly can could would will you u voce vc tu pode poderia
podes consegue conseguiria da dar de faz faca fazer manda mandar mete um uma pra para mim me go
ahead and e then entao now agora ja so just ok okay bot resync hey hi oi ola lets let's let us
vamos vamo i we need to want wanna quero queria preciso precisamos gostaria que try tenta tente
tentar quickly rapidinho urgente urgent asap also tambem tb tbm ai
""".split())
_NEGATIONS = frozenset({"don't", "dont", "do", "not", "never", "no", "nao", "nunca", "nem", "n",
                        "sem", "without", "didn't", "didnt", "won't", "wont", "shouldn't", "stop"})
# A state-changing verb whose object is one of these is a bulk or vague request: refused.
_VAGUE = frozenset({"anything", "everything", "nothing", "all", "them", "those", "these",
                    "everyone", "whatever", "tudo", "nada", "todos", "todas", "eles", "elas",
                    "nenhum", "nenhuma", "qualquer", "algum", "alguma", "some", "every", "each"})
_ANAPHORA = frozenset({"it", "that", "this", "same", "him", "ele", "ela", "esse", "essa", "este",
                       "isso", "isto", "aquele", "aquela", "mesmo", "mesma", "dele", "dela",
                       "nele", "nela", "desse", "dessa", "deste", "nesse", "nessa", "neste"})
_POLITE = frozenset("""
please pls plz pf pfv porfa por favor kindly thanks thank you thx ty obrigado obrigada valeu
hey hi hello oi ola bot resync ok okay now agora ja so just then entao again
""".split())

_NAME_MARK = "xjobx"  # stands for a job name in the folded text, so keywords never hit names

# ---------------------------------------------------------------------------------------------
# Patterns over the folded text
# ---------------------------------------------------------------------------------------------


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.VERBOSE)


_RERUN = _rx(r"""\b(?:
    re-?run | rerrun | rerum | re\ run | restart | retry | resubmit | relaunch | reprocess
  | re-?execut(?:e|a|ar|em) | rerod(?:a|e|ar|em) | reprocess(?:a|e|ar|em) | relanc(?:a|e|ar|em)
  | re?ssubmet(?:e|a|er|am) | resubmet(?:e|a|er|am) | reinici(?:a|e|ar|em) | retent(?:a|e|ar)
  | (?:run|rode|roda|rodar|rodem|execute|executa|executar|exec|dispara|dispare|disparar
     |launch|submit|submete|start|trigger|kick\ off|kick|tenta|tente|tentar|joga|jogue|jogar)
    (?:\ \S+){0,4}?\ (?:again|de\ novo|novamente|outra\ vez|mais\ uma\ vez|once\ more)
  | give\ (?:it|that|this|(?:the\ )?(?:job\ )?xjobx)\ (?:another|one\ more|a\ second)\ (?:go|try|shot|run|chance)
  | (?:da|de|dar)\ (?:mais\ )?(?:uma\ )?(?:nova\ )?chance\ (?:pro|pra|para\ o|ao)
)\b""")
_HOLD = _rx(r"""\b(?:
    hold(?!\ on\b|\ up\b|\ off\b|\ tight\b) | segur(?:a|e|ar|em)(?!\ ai\b|\ la\b)
  | paus(?:e|a|ar|em) | suspend(?:e|a|er|am)? | freeze | trav(?:a|e|ar)
  | (?:put|place|set|keep|leave|coloc(?:a|e|ar)|poe|ponha|por|deix(?:a|e|ar)|bot(?:a|e|ar))
    (?:\ \S+){0,4}?\ (?:on|in|em|no|na)\ (?:hold|espera|pausa|ice|standby|stand-by)
  | block | bloque(?:ia|ie|ar|iem) | congel(?:a|e|ar)
  | (?:stop|keep|prevent)\ (?:it|that|this|(?:the\ )?(?:job\ )?xjobx)\ from\ (?:running|starting|launching|kicking\ off)
  | imped(?:e|a|ir)\ (?:o\ |a\ )?(?:job\ )?(?:xjobx|ele|ela|isso)\ de\ (?:rodar|iniciar|comecar|executar|subir)
)\b""")
_RELEASE = _rx(r"""\b(?:
    release | unhold | un-hold | liber(?:a|e|ar|em) | solt(?:a|e|ar) | resume | retom(?:a|e|ar)
  | despaus(?:a|e|ar) | unfreeze | destrav(?:a|e|ar)
  | let\ (?:it|that|this|(?:the\ )?(?:job\ )?xjobx(?:\ job)?)\ (?:go|run|start|proceed|continue)\b
  | unblock | un-block | unpause | desbloque(?:ia|ie|ar|iem) | release\ the\ hold
  | deix(?:a|e|ar)\ (?:o\ |a\ )?(?:job\ )?(?:xjobx|ele|ela|isso)\ (?:rodar|seguir|ir|andar|executar|continuar|iniciar)\b
  | (?:take|get|remove|pull|tira|tire|tirar|remova|remover|retira|retire)
    (?:\ \S+){0,4}?\ (?:off|out\ of|from|do|da|de)\ (?:hold|espera|pausa)
)\b""")
_TONIGHT = r"(?:tonight|today|this\ run|hoje(?:\ a\ noite)?|esta\ noite|nesta\ noite|essa\ noite|no\ plano\ de\ hoje)"
_CANCEL = _rx(rf"""\b(?:cancel|cancel(?:a|e|ar|em)|abort|abort(?:a|e|ar|em)|skip|pul(?:a|e|ar|em)
  | (?:remove|drop|take|tira|tire|tirar|remov(?:a|e|er)|retir(?:a|e|ar))\ (?:the\ |o\ |a\ )?(?:job\ )?(?:xjobx|it|ele|ela)
    \ (?:from|out\ of|off|do|da)\ (?:(?:today's|tonight's|the|this|o|a)\ )?(?:plan|plano)(?:\ (?:de\ hoje|for\ today|atual))?
  | (?:don't|dont|do\ not|nao)\ (?:let\ |deix(?:a|e)\ )?(?:the\ |o\ |a\ )?(?:job\ )?xjobx\ (?:run|rodar|roda|executar|start)\ {_TONIGHT}
  | (?:don't|dont|do\ not|nao)\ (?:run|roda|rode|executa|execute)\ (?:the\ |o\ |a\ )?(?:job\ )?xjobx\ {_TONIGHT}
)\b""")
_ACTIONS = (("rerun_job", _RERUN), ("hold_job", _HOLD), ("release_job", _RELEASE),
            ("cancel_job", _CANCEL))
_BARE_OK = frozenset({"rerun_job", "release_job"})  # "roda de novo" alone is a follow-up
_ANY_ACTION = _rx(r"""\b(?:re-?run\w*|rerod\w*|re-?execut\w*|reprocess\w*|restart\w*|retry
  |hold|segur\w*|paus\w*|release|liber\w*|solt\w*|cancel\w*|abort\w*|rod(?:ar|o)|run)\b""")

_HOWTO = _rx(r"""\b(?:
    how\ (?:do|can|could|should|would|does|did|may)\ ?(?:i|we|you|one|u|someone|people|they)\b
  | how\ to\b | what(?:'s|\ is)\ the\ (?:way|procedure|command)\ to\b
  | como\ (?:eu\ |a\ gente\ |que\ )?(?:faco|fazer|posso|podemos|consigo|devo|se\ faz)\b
  | como\ (?:\S+\ )?(?:rodar|reexecutar|rerodar|segurar|liberar|cancelar|dar|colocar|tirar|ver
      |verificar|consultar|checar|usar|resolver|corrigir|consertar|tratar|solucionar|arrumar
      |reprocessar|reiniciar|lidar|evitar|recuperar|contornar)\b
  | como\ (?:eu\ |a\ gente\ )?(?:reexecuto|rodo|seguro|libero|cancelo|vejo|resolvo|corrijo|conserto|trato
      |soluciono|arrumo|uso|recupero|evito|lido|contorno)\b
)""")
_FIX = _rx(r"""\b(?:fix\w*|resolve|solve|troubleshoot\w*|handle|recover|deal\ with|debug|workaround
  |prevent|avoid|resolv\w*|corrig\w*|corrij\w*|consert\w*|trat(?:ar|o|a)|soluc\w*|arrum\w*
  |contorn\w*|evit\w*|recuper\w*|lid(?:ar|o)\ com)\b""")
_BOT_WORDS = _rx(r"""\b(?:you|u|voce|vc|bot|resync|commands?|comandos?|use|usar|uso|status|log
  |list|lista|see|ver|vejo|check|checar|verificar|consultar|ask|pedir|perguntar)\b""")
_RUNBOOK = _rx(r"""\b(?:
    runbooks? | playbooks? | procedures? | procedimentos? | knowledge\ base | documentation
  | documentacao | wiki | workaround | troubleshoot\w*
  | what\ (?:should|do|can|must)\ (?:i|we)\ do | what\ to\ do
  | o\ que\ (?:eu\ |a\ gente\ |devo\ |devemos\ |posso\ |se\ )?(?:faco|fazer|fazemos)\b
  | what\ does\ .*\ mean | o\ que\ (?:significa|quer\ dizer)
  | what\ is\ (?:an?\ )?(?:rc|return\ code|exit\ code|abend)\b
  | (?:fix|solution|solucao|correcao)\ (?:for|para|pra)\b
)""")
_HELP_ALONE = re.compile(r"^(?:help|ajuda|socorro|menu|comandos|commands|h|hlp|halp|start|hi|hello|hey"
                  r"|oi|ola|e ai|opa|me ajuda|help me|preciso de ajuda|i need help)$")
_HELP = _rx(r"""\b(?:
    what\ (?:can|could)\ (?:you|u)\ (?:do|help)
  | what\ (?:are|is)\ (?:your|the)\ (?:commands|options|capabilities|features)
  | what\ do\ you\ (?:do|know|support|understand)
  | (?:who|what)\ are\ you | what\ can\ i\ ask
  | (?:list|show)(?:\ me)?(?:\ the|\ your)?\ commands
  | how\ (?:do\ i|to|can\ i|should\ i)\ use\ (?:you|this|the\ bot|resync|it)
  | o\ que\ (?:voce|vc|tu|o\ bot|o\ resync)\ (?:sabe|pode|consegue|faz|entende)
  | o\ que\ (?:eu\ )?posso\ (?:te\ |lhe\ )?(?:pedir|perguntar)
  | quais\ (?:sao\ )?(?:os\ )?(?:seus\ |teus\ )?comandos
  | como\ (?:te\ |voce\ |vc\ )?(?:uso|usar|funciona)
  | (?:pra|para)\ (?:que|q)\ (?:voce|vc|tu|o\ bot)\ serve | what\ are\ you\ for
)\b""")
_HELP_WORD = _rx(r"\b(?:help|ajuda|ajude|socorro)\b")

_HEALTH_SUBJECT = _rx(r"""\b(?:tws|hwa|workload\ automation|engine|motor|master|mdm|servidor
  |server|conexao|connection|connectivity|conectividade|api|backend|plan\ server|scheduler
  |agendador|orquestrador)\b""")
_HEALTH_WORD = _rx(r"""\b(?:up|down|alive|online|offline|reachable|unreachable|available
  |unavailable|disponivel|indisponivel|health|healthy|saude|no\ ar|fora|caiu|caido|funcionando
  |respondendo|responding|working|ok|okay|fine|connected|conectado|ping|vivo|de\ pe|acessivel
  |accessible|status|estado|situacao|problem|problema|problemas|issue|issues|lento|slow|reach
  |travado|frozen|dead|morto|talk\ to|falar\ com|connect|conectar|acessar|reach)\b""")
_HEALTH_ALONE = _rx(r"^(?:health|healthcheck|health\ check|ping|saude)$")
_RUNNING_WORD = _rx(r"\b(?:running|rodando|executando|de\ pe)\b")

_LOG = _rx(r"""\b(?:logs?|stdlist|std\ list|joblog|output|saida|sysout|spool|stdout|stderr|trace
  |traceback|mensagem\ de\ erro|error\ message|error\ output)\b
  |^(?:e|and|what\ about)\ (?:o\ |os\ |the\ )?(?:erro|erros|error|errors)$""")
_WHY = _rx(r"\b(?:why|porque|por\ que|pq|motivo|reason|causa|cause)\b")
_WHAT_HAPPENED = _rx(r"""\b(?:what\ (?:happened|went\ wrong)|o\ que\ (?:aconteceu|houve|rolou|deu)
  |what(?:'s|s|\ is|\ was)\ (?:the\ )?(?:error|problem|issue)|what\ error|que\ erro
  |qual\ (?:foi\ |e\ |eh\ )?(?:o\ )?(?:erro|problema))\b""")

_LIST_CUE = _rx(r"""\b(?:which|what(?:'s|s)?|quais|que|any|anything|anyone|something|algum|alguma
  |alguns|algumas|algo|tem|temos|ha|existe|existem|list|lista|listar|liste|show|mostra|mostre
  |mostrar|me\ da|give\ me|tell\ me|get|how\ many|quantos|quantas|all|todos|todas|everything
  |tudo|who|quem|count|teve|tiveram|houve|there(?:'s|\ is|\ are|\ were|\ was)?)\b""")
_JOBS_WORD = _rx(r"\b(?:jobs|tarefas|failures|falhas|errors|erros|abends)\b")
_LIST_VERB = re.compile(r"\b(?:list|lista|listar|liste|show|mostra|mostre|mostrar|quais|which|how many"
                        r"|quantos|quantas|jobs)\b")
_STATUS_WORD = _rx(r"""\b(?:
    (?P<PEND>aguardando\ confirmacao|pendentes?\ de\ confirmacao|pending\ confirmation
      |awaiting\ confirmation|pend|pending|pendentes?)
  | (?P<CANCL>cancell?ed|cancelad[oa]s?|cancl)
  | (?P<HOLD>on\ hold|in\ hold|em\ hold|held|hold|parad[oa]s?|em\ espera|segurad[oa]s?|pausad[oa]s?
      |paused|suspens[oa]s?|suspended)
  | (?P<FAILED>fail\w*|abend\w*|broken|broke|errors?|erros?|errored|falh\w*|com\ erro|deu\ erro
      |deram\ erro|crash\w*|quebr\w*|blew\ up|blown\ up|died|deu\ pau|deram\ pau|red|vermelh[oa]s?)
  | (?P<EXEC>running|rodando|executando|em\ execucao|in\ progress|em\ andamento|executing|exec
      |active|ativos?)
  | (?P<SUCC>done|succe\w*|success\w*|complet\w*|finish\w*|conclu\w*|termin(?:ou|aram|ad[oa]s?)
      |finaliz\w*|acab(?:ou|aram|ad[oa]s?)|sucesso|succ)
  | (?P<READY>waiting|ready|pront[oa]s?|aguardando|esperando|queued|na\ fila)
  | (?P<LATE>late|running\ late|atrasad[oa]s?|em\ atraso|com\ atraso|overdue|behind\ schedule|past\ (?:their\ |the\ |its\ )?deadline
      |past\ due|fora\ do\ prazo|passou\ do\ prazo|passaram\ do\ prazo|estourou\ o\ prazo|estouraram\ o\ prazo)
)\b""")
_COUNT = _rx(r"""\b(?:how\ many|quantos|quantas|count|number\ of|numero\ de|total\ de|quantidade\ de|qtd|qtos|qtas)\b""")
# Earlier plans: the bot sees only the current one, so these get "I can't answer that yet".
_HISTORY = _rx(r"""\b(?:yesterday|ontem|anteontem|day\ before|last\ (?:week|month|year|monday|tuesday|wednesday|thursday
  |friday|saturday|sunday|weekend|plan)|semana\ passada|mes\ passado|ano\ passado|fim\ de\ semana\ passado
  |previous\ (?:plan|day|week)|plano\ anterior|dia\ anterior|(?:2|3|4|5|6|7|two|three|four|five|dois|tres|quatro|cinco)
  \ (?:days|dias)\ (?:ago|atras)|ha\ (?:2|3|4|5|6|7|dois|tres|quatro|cinco)\ dias|this\ week|essa\ semana|esta\ semana
  |nesta\ semana|nessa\ semana|last\ \d+\ days|ultimos\ \d+\ dias|historico|history|trend|tendencia)\b""")
# Words a request for a list may carry besides its filters ("list all the jobs in the plan, please").
_LIST_FILLER = frozenset("""
which what whats what's quais qual que all todos todas os as o a the jobs job tarefas list lista listar liste show
mostra mostre mostrar me give tell get there are is were was be tem ha existem existe do da de dos das no na nos nas
plan plano current atual today hoje now agora in of from how many quantos quantas count number numero total
quantidade qtd qtos qtas are there's any algum alguns everything tudo every each entire whole inteiro in hand
have has we voce vc temos exist existing there existe right cada
""".split())
_STATUS_QUESTION = _rx(r"""\b(?:status|estado|situacao|state|progress|andamento|how(?:'s|\ is)\ it
  |como\ (?:esta|ta|anda|ficou)\ (?:ele|ela|isso)|is\ it\ (?:done|finished|over|ok|running)
  |did\ it\ (?:finish|run|end|work|complete)|terminou|acabou|rodou|ja\ foi|still\ running
  |ainda\ (?:rodando|executando))\b""")
_STREAM_WORD = _rx(r"\b(?:stream|jobstream|fluxo|cadeia|malha|flow|chain)\b")

# TWS internal states accepted verbatim by the command grammar (``jobs ABEND``).
_TWS_STATES = frozenset({"ABEND", "ABENP", "ADD", "BOUND", "CANCL", "CANCELP", "DONE", "ERROR",
                         "EXEC", "EXTRN", "FAIL", "FENCE", "HOLD", "INTRO", "PEND", "READY",
                         "SCHED", "SUCC", "SUCCP", "SUPPR", "WAIT"})

# ---------------------------------------------------------------------------------------------
# Cleaning and tokens
# ---------------------------------------------------------------------------------------------


def _fold_table() -> dict[int, str]:
    """Latin letters with accents to their base letter, one character each, so offsets hold."""
    table = {ord(q): "'" for q in "\u2018\u2019\u00b4`"}
    table.update({ord(q): '"' for q in "\u201c\u201d\u00ab\u00bb"})
    for code in range(0xC0, 0x250):
        base = unicodedata.normalize("NFKD", chr(code))[:1]
        if base != chr(code) and base.isascii() and base.isalpha():
            table[code] = base
    return table


_FOLD = _fold_table()
_SLACK_SPECIAL = re.compile(r"<[@#!][^>]*>|<(?:https?|mailto):[^>|]*>")
_SLACK_LABEL = re.compile(r"<[^>|]*\|([^>]*)>")
_SHORTCODE = re.compile(r"(?<![\w:]):[a-z0-9_+\-']+:(?::skin-tone-\d:)?")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\u20E3"
                    "\U000E0000-\U000E007F]")
_FORMATTING = re.compile(r"[*~`>]|&(?:amp|lt|gt);")
_CLITIC = re.compile(r"(?<=[a-z\u00e1\u00e9\u00ed\u00f3\u00fa\u00e2\u00ea\u00f4])-(?:l[oa]s?)\b")
_TOKEN = re.compile(r"[,;!?:]+|[^\s,;!?:()\[\]{}\"<>|=]+")
_NAME_SHAPE = re.compile(r"(?:/?[A-Za-z0-9_@\-/]+#)?(?:[A-Za-z][A-Za-z0-9_@\-]*\.)?"
                         r"[A-Za-z@][A-Za-z0-9_@\-]*")
_SLOT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{2,}")
_STREAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
_NOT_NAME = re.compile(r"(?i)(?:rc|cc)\d+|aws[a-z]{3}\d{3}[a-z]")


def _clean(text: str) -> str:
    """Remove what Slack adds around words: mentions, links, emojis, *bold*, `code`."""
    text = _SLACK_SPECIAL.sub(" ", text)
    text = _SLACK_LABEL.sub(r" \1 ", text)
    text = _SHORTCODE.sub(" ", text)
    text = _EMOJI.sub(" ", text)
    text = _FORMATTING.sub(" ", text)
    return _CLITIC.sub(" ele", text)


def _fold(word: str) -> str:
    return word.translate(_FOLD).lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Name:
    ref: JobRef
    slot: str  # "job", "stream", "workstation" or "" when no keyword says
    prep: str  # the folded word just before, to read "in S" / "on W"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Message:
    words: tuple[str, ...]  # folded words, names replaced by _NAME_MARK
    clauses: tuple[int, ...]  # clause number of each word (punctuation starts a new one)
    starts: tuple[int, ...]  # offset of each word in ``text``
    text: str
    names: tuple[_Name, ...]

    def word_at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(raw word, folded word, clause number) for each word of the cleaned text."""
    out: list[tuple[str, str, int]] = []
    clause = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0] in ",;!?:":
            clause += 1
            continue
        word = token.strip("'._-\"")
        if "#" not in word:  # a workstation by its folder path (/ETL/LNX_ETL01): its name matches it
            word = word.strip("/").rsplit("/", 1)[-1]
        if word:
            out.append((word, _fold(word), clause))
        if token.endswith("."):
            clause += 1
    return out


def _strong_name(raw: str, folded: str) -> bool:
    """Whether a word looks like a TWS name by its shape alone (``ACME_BILLING_07``, ``CPU1#S.J``).

    Letters with accents count as letters here (``ÉXTRAÇÃO_01``): TWS cannot have such a name,
    but the user typed one, and it must be answered as theirs, never replaced by the context.
    """
    raw = raw.translate(_FOLD)
    if folded in _COMMON or not _NAME_SHAPE.fullmatch(raw) or _NOT_NAME.fullmatch(raw):
        return False
    if "#" in raw:
        return True
    if "." in raw:
        return raw.isupper() or any(c.isdigit() or c == "_" for c in raw)
    if "_" in raw or any(c.isdigit() for c in raw):
        return len(raw) >= 2
    return raw.isupper() and len(raw) >= 3


def _slot(folded: list[str], i: int) -> str:
    """What a keyword says name ``i`` is: "stream S", "S stream", "the S jobs", "job J", "ws W"."""
    j = i - 1
    while j >= 0 and i - j <= 3 and folded[j] in _SLOT_FILLERS and folded[j] not in _JOB_WORDS:
        j -= 1
    before = folded[j] if j >= 0 else ""
    after = folded[i + 1] if i + 1 < len(folded) else ""
    if before in _STREAM_WORDS:
        return "stream"
    if before in _WS_WORDS:
        return "workstation"
    if before in _JOB_WORDS:
        return "job"
    if after in _STREAM_WORDS or after == "jobs":
        return "stream"
    return "job" if after in _JOB_WORDS else ""


def _ref(raw: str) -> JobRef | None:
    """The parts of a name; one with accents keeps them (the tools say it is not in the plan)."""
    try:
        return parse_job_ref(raw)
    except JobNotFound:
        pass
    try:
        parse_job_ref(raw.translate(_FOLD))
    except JobNotFound:
        return None
    ws, _, rest = raw.rpartition("#")
    stream, _, job = rest.rpartition(".")
    return JobRef(job=job.upper(), stream=stream.upper() or None, workstation=ws.strip("/").upper() or None)


def _analyse(tokens: list[tuple[str, str, int]]) -> _Message:
    raws = [raw[:-2] if raw.lower().endswith("'s") else raw for raw, _, _ in tokens]
    folded = [f for _, f, _ in tokens]
    names: list[_Name] = []
    words = list(folded)
    for i, raw in enumerate(raws):
        prev = folded[i - 1] if i else ""
        lead = folded[i - 2] if i > 1 else ""
        strong = _strong_name(raw, _fold(raw))
        weak = (prev in _WEAK_SLOTS and lead in _WEAK_LEAD and bool(_SLOT_NAME.fullmatch(raw))
                and folded[i] not in _COMMON
                and not _STATUS_WORD.fullmatch(folded[i]) and not _WEAK_NOT_NAME.search(folded[i]))
        ref = _ref(raw) if strong or weak else None
        if ref is None:
            continue
        names.append(_Name(ref=ref, slot=_slot(folded, i), prep=prev))
        words[i] = _NAME_MARK
    starts, offset = [], 0
    for word in words:
        starts.append(offset)
        offset += len(word) + 1
    return _Message(words=tuple(words), clauses=tuple(c for _, _, c in tokens), starts=tuple(starts),
                    text=" ".join(words), names=tuple(names))


# ---------------------------------------------------------------------------------------------
# Language
# ---------------------------------------------------------------------------------------------

_PT_WORDS = frozenset("""
o os as do da dos das no na nos nas de e em um uma que qual quais quem como porque pq por favor pfv
esta estao ta tao nao sim voce vc fazer faz faca hoje agora ontem ajuda obrigado obrigada valeu
tudo nada novo novamente dele dela isso esse essa ele ela pra pro para com sem mais erro erros ainda
ja ai oi ola bom dia tarde noite mostra mostre lista libera libere segura segure cancela cancele
roda rode rodar reroda falhou falharam abendou abendaram reexecuta reexecute reexecutar situacao
meu minha seu sua se quando onde aqui tem ha sao foi foram era ser fluxo cadeia dar aconteceu houve
sabe pode posso tb tbm blz vamos preciso quero consegue mesmo ultimo parados parado rodando
executando concluidos terminou acabou falha falhas deu saida resolver corrigir significa ao aos
pelo pela comandos coloca coloque poe tira tire solta solte deixa manda ver cade teve tiveram vai vou
quantos quantas existem existe atrasados atrasado atrasada atrasadas pendentes pendente espera suspensos
suspenso pausa pausado pula pular desbloqueia desbloquear trava travado fluxo cadeia malha agora ontem
esta estao respondendo funcionando caiu fora ar servidor mestre tudo bem beleza brigado
""".split())
# "hold", "rerun", "log", "status", "job", "stream" are said in both languages: no vote.
_EN_WORDS = frozenset("""
the is are was were what what's whats which why how show list of in on it its and did does done
yet please pls plz can could would you u failed failing running release cancel help up down
broken today now that one this my any anything there fix get give tell check again to for with
from about all i we have has been be will still where when who doing happened wrong put take off
let not don't dont an run being thanks thank finished succeeded waiting ready held should need
want way commands
""".split())
_PT_ACCENT = re.compile("[\u00e3\u00f5\u00e7\u00e1\u00e9\u00ed\u00f3\u00fa\u00e2\u00ea\u00f4"
                        "\u00e0\u00c3\u00d5\u00c7\u00c1\u00c9\u00cd\u00d3\u00da\u00c2\u00ca\u00d4]")
_PT_ENDING = re.compile(r"(?:cao|coes|ando|endo|aram|eram|iram|ou|ados?|idos?|mente)$")
_EN_ENDING = re.compile(r"(?:ing|n't|ed|ly)$")


def detect_language(text: str) -> str:
    """"pt" or "en", by counting marker words, accents and endings; ties go to English."""
    return _vote(text, _tokens(_clean(text)))


def _vote(text: str, tokens: list[tuple[str, str, int]]) -> str:
    pt = 2 * len(_PT_ACCENT.findall(text))
    en = 0
    for raw, folded, _ in tokens:
        if _strong_name(raw, folded):
            continue
        if folded in _PT_WORDS:
            pt += 1
        elif folded in _EN_WORDS:
            en += 1
        elif len(folded) > 4 and _PT_ENDING.search(folded):
            pt += 1
        elif len(folded) > 4 and _EN_ENDING.search(folded):
            en += 1
    return "pt" if pt > en else "en"


# ---------------------------------------------------------------------------------------------
# Command grammar
# ---------------------------------------------------------------------------------------------

_JOB_COMMANDS = {"status": "job_status", "log": "job_log", "rerun": "rerun_job", "hold": "hold_job",
                 "release": "release_job", "cancel": "cancel_job", "kill": "kill_job"}
#: ``confirm JOB succ|abend``: the outcome word picks the tool (the policy action is ``confirm``).
_CONFIRM_TOOLS = {"succ": "confirm_succ_job", "abend": "confirm_abend_job"}
_COMMAND_STRIP = re.compile(r"[?!.]+$")


def _status_of(word: str) -> str | None:
    """A list filter from one command word: a TWS state verbatim, or a status word."""
    if word.upper() in _TWS_STATES:
        return word.upper()
    match = _STATUS_WORD.fullmatch(_fold(word))
    return match.lastgroup if match else None


def _job_args(ref: JobRef) -> dict[str, str]:
    args = {"job": ref.job}
    if ref.stream:
        args["stream"] = ref.stream
    if ref.workstation:
        args["workstation"] = ref.workstation
    return args


def _list_command(words: list[str]) -> dict[str, str] | None:
    """``[STATUS] [stream S] [ws W]``; None when anything else is there."""
    args: dict[str, str] = {}
    i = 0
    while i < len(words):
        key = words[i].lower()
        if key in ("stream", "ws", "workstation") and i + 1 < len(words):
            args["stream" if key == "stream" else "workstation"] = words[i + 1].upper()
            i += 2
        elif "status" not in args and (status := _status_of(words[i])):
            args["status"] = status
            i += 1
        else:
            return None
    return args


def _stream_command(word: str) -> Intent | None:
    """``stream S`` or ``stream WS#S``."""
    ws, _, stream = word.rpartition("#")
    if not _STREAM_NAME.fullmatch(stream):
        return None
    args = {"stream": stream.upper()}
    if ws.strip("/"):
        args["workstation"] = ws.strip("/").upper()
    return Intent(tool="stream_status", args=args, source="command")


def _odd_name(word: str) -> JobRef | None:
    """``log naïve``: a word in a job's place is the user's name, even one TWS could not have."""
    return JobRef(job=word.upper()) if any(c.isalpha() for c in word) else None


def parse_command(text: str) -> Intent | None:
    """The terse grammar of slash commands and mentions; None when ``text`` is not a command."""
    words = _COMMAND_STRIP.sub("", _clean(text).strip()).split()
    if not words:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb == "help":
        return Intent(tool="help", source="command")
    if verb == "health" and not rest:
        return Intent(tool="engine_health", source="command")
    if verb in ("jobs", "failures") and (args := _list_command(rest)) is not None:
        if verb == "failures":
            if "status" in args:
                return None
            args = {"status": "FAILED", **args}
        return Intent(tool="list_jobs", args=args, source="command")
    if verb == "confirm" and len(rest) == 2 and rest[1].lower() in _CONFIRM_TOOLS and (ref := _ref(rest[0])):
        return Intent(tool=_CONFIRM_TOOLS[rest[1].lower()], args=_job_args(ref), source="command")
    if len(rest) != 1 or _fold(rest[0]) in _COMMON:
        return None
    if verb == "stream":
        return _stream_command(rest[0])
    if verb in _JOB_COMMANDS and (ref := _ref(rest[0]) or _odd_name(rest[0])):
        return Intent(tool=_JOB_COMMANDS[verb], args=_job_args(ref), source="command")
    return None


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def _split_names(msg: _Message, *, listing: bool) -> tuple[list[_Name], dict[str, str]]:
    """The job names, and the stream / workstation the sentence places them in.

    In a list request a bare name after "in"/"na"/"do" is the stream to look in ("failed jobs in
    S"); after "on" it is a workstation. Elsewhere the first unlabelled name is the job.
    """
    jobs: list[_Name] = []
    where: dict[str, str] = {}
    for name in msg.names:
        slot = name.slot
        if not slot and (listing or jobs) and name.prep in _LIST_PREPS:
            slot = "workstation" if name.prep in _WS_PREPS else "stream"
        if slot == "stream":
            where.setdefault("stream", name.ref.job)
            if name.ref.workstation:
                where.setdefault("workstation", name.ref.workstation)
        elif slot == "workstation":
            where.setdefault("workstation", name.ref.job)
        else:
            jobs.append(name)
    return jobs, where


def _job_intent(tool: str, job: _Name, where: dict[str, str], lang: str) -> Intent:
    args = _job_args(job.ref)
    for key, value in where.items():
        args.setdefault(key, value)
    return Intent(tool=tool, args=args, lang=lang)


def _clause_words(msg: _Message, start: int) -> tuple[list[str], list[str]]:
    """Words before and after a match, within its clause."""
    k = msg.word_at(start)
    clause = msg.clauses[k]
    before = [msg.words[j] for j in range(k) if msg.clauses[j] == clause]
    after = [msg.words[j] for j in range(k, len(msg.words)) if msg.clauses[j] == clause]
    return before, after


def _action(msg: _Message, lang: str) -> Intent | None:
    """A state-changing request, or a refusal (tool None) when it is negated, vague or ambiguous.

    Returns None when no action verb stands at the start of a clause, so other rules may apply.
    """
    found: list[tuple[str, list[str], list[str]]] = []
    negated = False
    for tool, pattern in _ACTIONS:
        for match in pattern.finditer(msg.text):
            before, after = _clause_words(msg, match.start())
            if all(w in _ALLOWED_PRE for w in before):
                found.append((tool, before, after))
                break
            negated = negated or any(w in _NEGATIONS for w in before[-3:])
    if not found:
        return Intent(tool=None, lang=lang) if negated else None
    if len({tool for tool, _, _ in found}) > 1:
        return Intent(tool=None, lang=lang)
    tool, before, after = found[0]
    jobs, where = _split_names(msg, listing=False)
    if any(w in _VAGUE for w in after) or len({str(n.ref) for n in jobs}) > 1:
        return Intent(tool=None, lang=lang)
    if jobs:
        return _job_intent(tool, jobs[0], where, lang)
    if any(w in _ANAPHORA for w in after):
        return Intent(tool=tool, lang=lang, refers_back=True)
    if tool in _BARE_OK and _bare_phrase(msg, dict(_ACTIONS)[tool]):
        return Intent(tool=tool, lang=lang, refers_back=True)
    return Intent(tool=None, lang=lang)


def _bare_phrase(msg: _Message, pattern: re.Pattern[str]) -> bool:
    """Only the action phrase and politeness: "roda de novo", "rerun pls"."""
    return all(w in _POLITE or w in _ALLOWED_PRE for w in pattern.sub(" ", msg.text).split())


def _howto(msg: _Message, lang: str) -> Intent | None:
    """"How do I ...?": runbooks for fixing things, help for using the bot; never an action."""
    if _FIX.search(msg.text):
        return Intent(tool="search_runbooks", lang=lang)
    if _ANY_ACTION.search(msg.text):
        return Intent(tool="help", lang=lang)
    if msg.names:
        return None  # "how can I see the log of X?": answer the question itself
    if _BOT_WORDS.search(msg.text):
        return Intent(tool="help", lang=lang)
    return Intent(tool="search_runbooks", lang=lang)


def _log(msg: _Message, jobs: list[_Name], where: dict[str, str], lang: str) -> Intent | None:
    """The log, or why a job failed: "why did X fail?", "what went wrong with X?", "e o log?".

    Without a job name only a log word, "why" or "what happened to it" refers back; "o que deu
    erro hoje?" is a list request.
    """
    text = msg.text
    if jobs:
        status = _STATUS_WORD.search(text)
        failing = _WHY.search(text) and status is not None and status.lastgroup == "FAILED"
        if _LOG.search(text) or _WHAT_HAPPENED.search(text) or failing:
            return _job_intent("job_log", jobs[0], where, lang)
        return None
    pointed = _WHAT_HAPPENED.search(text) and any(w in _ANAPHORA for w in msg.words)
    if _LOG.search(text) or _WHY.search(text) or pointed:
        return Intent(tool="job_log", lang=lang, refers_back=True)
    return None


def _health(msg: _Message, lang: str) -> Intent | None:
    text = msg.text
    if msg.names or not _HEALTH_SUBJECT.search(text):
        return None
    if _HEALTH_WORD.search(text) or (_RUNNING_WORD.search(text) and not _LIST_CUE.search(text)):
        return Intent(tool="engine_health", lang=lang)
    return None


def _listing(msg: _Message, lang: str) -> Intent | None:
    text = msg.text
    status = _STATUS_WORD.search(text)
    plural = _JOBS_WORD.search(text)
    listed = plural and (_LIST_VERB.search(text) or status or msg.names)
    if not ((status and _LIST_CUE.search(text)) or listed):
        return None
    jobs, where = _split_names(msg, listing=True)
    if len(jobs) == 1 and not where and plural and (_COUNT.search(text) or _LIST_VERB.search(text)) \
            and not jobs[0].ref.stream and not jobs[0].slot:
        where = {"stream": jobs[0].ref.job}  # "quantos jobs tem o X?": where to look (the tools ask the plan)
        jobs = []
    if jobs:
        return None
    args = {"status": status.lastgroup} if status else {}
    if not args and not where:  # nothing narrows it: refuse a filter we did not read, never the whole plan
        residue = [w for w in msg.words if w not in _LIST_FILLER and w not in _POLITE and w not in _ALLOWED_PRE
                   and w != _NAME_MARK and len(w) > 2]
        if residue:
            return Intent(tool=None, lang=lang, unsupported=f"filter:{residue[0]}")
    tool = "count_jobs" if _COUNT.search(text) else "list_jobs"
    return Intent(tool=tool, args=args | where, lang=lang)


def _rules(msg: _Message, lang: str) -> Intent:
    """Most specific first: help and how-to questions before actions, so "how do I rerun a job?"
    never reruns anything; actions before status, so "X failed, rerun it" reruns; a job name with
    nothing else to say about it is a status question."""
    text = msg.text
    if not text.strip():
        return Intent(tool=None, lang=lang)
    if _HELP_ALONE.match(text) or _HELP.search(text):
        return Intent(tool="help", lang=lang)
    if history := _HISTORY.search(text):
        return Intent(tool=None, lang=lang, unsupported=f"history:{history.group()}")
    if _HOWTO.search(text) and (intent := _howto(msg, lang)):
        return intent
    if _RUNBOOK.search(text):
        return Intent(tool="search_runbooks", lang=lang)
    if (intent := _action(msg, lang)) is not None:
        return intent
    jobs, where = _split_names(msg, listing=False)
    if (intent := _log(msg, jobs, where, lang) or _health(msg, lang) or _listing(msg, lang)) is not None:
        return intent
    if _HEALTH_ALONE.match(text):
        return Intent(tool="engine_health", lang=lang)
    if where.get("stream") and not jobs:
        args = where if "workstation" in where else {"stream": where["stream"]}
        return Intent(tool="stream_status", args=dict(args), lang=lang)
    if jobs:
        return _job_intent("job_status", jobs[0], where, lang)
    if _STREAM_WORD.search(text) and _STATUS_QUESTION.search(text):
        return Intent(tool="stream_status", lang=lang, refers_back=True)
    status = _STATUS_WORD.search(text)
    if _STATUS_QUESTION.search(text) or (status and status.group() != "hold" and len(msg.words) <= 4):
        return Intent(tool="job_status", lang=lang, refers_back=True)
    if _HELP_WORD.search(text):
        return Intent(tool="help", lang=lang)
    return Intent(tool=None, lang=lang)


def understand(text: str, *, lang: str | None = None) -> Intent:
    """The command grammar first, then the rules; ``Intent(tool=None)`` when neither applies."""
    tokens = _tokens(_clean(text))
    lang = lang or _vote(text, tokens)
    if (command := parse_command(text)) is not None:
        return Intent(tool=command.tool, args=command.args, lang=lang, source="command")
    return _rules(_analyse(tokens), lang)


# Names that exist in the demo plan (``resync demo``: 3000 jobs, seed 7), so every example works there.
_EXAMPLES = {
    "en": ["status GL_POST_03", "which jobs failed today?", "show me the log of CLOSE_AP_03",
           "rerun AGT02#PAYROLL_DAILY.EXTRACT01", "how is the FECHAMENTO_MENSAL stream doing?",
           "is TWS up?", "how do I fix a database load that ended with RC 12?"],
    "pt": ["qual o status do AGG_DIARIO_02?", "quais jobs falharam hoje?", "mostra o log do REFRESH_MV_02",
           "roda de novo o AGT02#PAYROLL_DAILY.EXTRACT01", "como está a stream BKP_DIARIO?",
           "o TWS está no ar?", "como resolver erro de conexão recusada no FTP?"],
}


def examples(lang: str) -> list[str]:
    """Messages to show after "I didn't get that" and in help, in the user's language."""
    return list(_EXAMPLES["pt" if lang == "pt" else "en"])
