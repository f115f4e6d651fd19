"""The words and patterns the rules read: vocabulary of both languages, precompiled over folded text.

Kept apart from the logic so that growing the vocabulary (a new way to say "hold") never touches
how sentences are read.
"""

from __future__ import annotations

import re


# Words that are never job names, even typed in upper case ("rerun it NOW", "jobs HOLD", "TWS").
COMMON = frozenset("""
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
STREAM_WORDS = frozenset({"stream", "jobstream", "job-stream", "streams", "fluxo", "fluxos", "cadeia", "cadeias",
                           "malha", "malhas", "flow", "flows", "chain", "chains"})
WS_WORDS = frozenset({"workstation", "ws", "agent", "agente", "maquina", "server", "servidor",
                       "host", "cpu", "estacao"})
JOB_WORDS = frozenset({"job", "tarefa", "task"})
# Only these announce a lower-case name ("the job payroll"); "server" or "agent" are too loose.
WEAK_SLOTS = frozenset({"job", "stream", "jobstream", "workstation", "ws"})
WEAK_NOT_NAME = re.compile(r"(?:ing|able|ed|ly|ndo|ado|ido|ada|ida)$")
# ...and only after a determiner ("the job payroll", "do job backup"), not "every job right now".
WEAK_LEAD = frozenset({"", "the", "a", "o", "do", "da", "de", "of", "for", "pro", "pelo", "no",
                        "na", "that", "this", "esse", "este", "your", "my", "meu", "seu", "status", "is",
                        "esta", "ta"})
SLOT_FILLERS = frozenset({"the", "a", "an", "o", "da", "do", "de", "status", "named", "called",
                           "chamado", "chamada", "of", "job"})
# A name after one of these, in a list request, is where to look (stream, or workstation for "on").
LIST_PREPS = frozenset({"in", "na", "no", "nas", "nos", "em", "do", "da", "dos", "das", "of",
                         "from", "inside", "within", "under", "on", "at"})
WS_PREPS = frozenset({"on", "at"})

# Words allowed before an imperative in its clause: politeness, modals, "dá um rerun".
ALLOWED_PRE = frozenset("""
please pls plz pf pfv porfa por favor kindly can could would will you u voce vc tu pode poderia
podes consegue conseguiria da dar de faz faca fazer manda mandar mete um uma pra para mim me go
ahead and e then entao now agora ja so just ok okay bot resync hey hi oi ola lets let's let us
vamos vamo i we need to want wanna quero queria preciso precisamos gostaria que try tenta tente
tentar quickly rapidinho urgente urgent asap also tambem tb tbm ai
""".split())
NEGATIONS = frozenset({"don't", "dont", "do", "not", "never", "no", "nao", "nunca", "nem", "n",
                        "sem", "without", "didn't", "didnt", "won't", "wont", "shouldn't", "stop"})
# A state-changing verb whose object is one of these is a bulk or vague request: refused.
VAGUE = frozenset({"anything", "everything", "nothing", "all", "them", "those", "these",
                    "everyone", "whatever", "tudo", "nada", "todos", "todas", "eles", "elas",
                    "nenhum", "nenhuma", "qualquer", "algum", "alguma", "some", "every", "each"})
ANAPHORA = frozenset({"it", "that", "this", "same", "him", "ele", "ela", "esse", "essa", "este",
                       "isso", "isto", "aquele", "aquela", "mesmo", "mesma", "dele", "dela",
                       "nele", "nela", "desse", "dessa", "deste", "nesse", "nessa", "neste"})
POLITE = frozenset("""
please pls plz pf pfv porfa por favor kindly thanks thank you thx ty obrigado obrigada valeu
hey hi hello oi ola bot resync ok okay now agora ja so just then entao again
""".split())

NAME_MARK = "xjobx"  # stands for a job name in the folded text, so keywords never hit names

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
ACTIONS = (("rerun_job", _RERUN), ("hold_job", _HOLD), ("release_job", _RELEASE),
            ("cancel_job", _CANCEL))
BARE_OK = frozenset({"rerun_job", "release_job"})  # "roda de novo" alone is a follow-up
ANY_ACTION = _rx(r"""\b(?:re-?run\w*|rerod\w*|re-?execut\w*|reprocess\w*|restart\w*|retry
  |hold|segur\w*|paus\w*|release|liber\w*|solt\w*|cancel\w*|abort\w*|rod(?:ar|o)|run)\b""")

HOWTO = _rx(r"""\b(?:
    how\ (?:do|can|could|should|would|does|did|may)\ ?(?:i|we|you|one|u|someone|people|they)\b
  | how\ to\b | what(?:'s|\ is)\ the\ (?:way|procedure|command)\ to\b
  | como\ (?:eu\ |a\ gente\ |que\ )?(?:faco|fazer|posso|podemos|consigo|devo|se\ faz)\b
  | como\ (?:\S+\ )?(?:rodar|reexecutar|rerodar|segurar|liberar|cancelar|dar|colocar|tirar|ver
      |verificar|consultar|checar|usar|resolver|corrigir|consertar|tratar|solucionar|arrumar
      |reprocessar|reiniciar|lidar|evitar|recuperar|contornar)\b
  | como\ (?:eu\ |a\ gente\ )?(?:reexecuto|rodo|seguro|libero|cancelo|vejo|resolvo|corrijo|conserto|trato
      |soluciono|arrumo|uso|recupero|evito|lido|contorno)\b
)""")
FIX = _rx(r"""\b(?:fix\w*|resolve|solve|troubleshoot\w*|handle|recover|deal\ with|debug|workaround
  |prevent|avoid|resolv\w*|corrig\w*|corrij\w*|consert\w*|trat(?:ar|o|a)|soluc\w*|arrum\w*
  |contorn\w*|evit\w*|recuper\w*|lid(?:ar|o)\ com)\b""")
BOT_WORDS = _rx(r"""\b(?:you|u|voce|vc|bot|resync|commands?|comandos?|use|usar|uso|status|log
  |list|lista|see|ver|vejo|check|checar|verificar|consultar|ask|pedir|perguntar)\b""")
RUNBOOK = _rx(r"""\b(?:
    runbooks? | playbooks? | procedures? | procedimentos? | knowledge\ base | documentation
  | documentacao | wiki | workaround | troubleshoot\w*
  | what\ (?:should|do|can|must)\ (?:i|we)\ do | what\ to\ do
  | o\ que\ (?:eu\ |a\ gente\ |devo\ |devemos\ |posso\ |se\ )?(?:faco|fazer|fazemos)\b
  | what\ does\ .*\ mean | o\ que\ (?:significa|quer\ dizer)
  | what\ is\ (?:an?\ )?(?:rc|return\ code|exit\ code|abend)\b
  | (?:fix|solution|solucao|correcao)\ (?:for|para|pra)\b
)""")
HELP_ALONE = re.compile(r"^(?:help|ajuda|socorro|menu|comandos|commands|h|hlp|halp|start|hi|hello|hey"
                  r"|oi|ola|e ai|opa|me ajuda|help me|preciso de ajuda|i need help)$")
HELP = _rx(r"""\b(?:
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
HELP_WORD = _rx(r"\b(?:help|ajuda|ajude|socorro)\b")

HEALTH_SUBJECT = _rx(r"""\b(?:tws|hwa|workload\ automation|engine|motor|master|mdm|servidor
  |server|conexao|connection|connectivity|conectividade|api|backend|plan\ server|scheduler
  |agendador|orquestrador)\b""")
HEALTH_WORD = _rx(r"""\b(?:up|down|alive|online|offline|reachable|unreachable|available
  |unavailable|disponivel|indisponivel|health|healthy|saude|no\ ar|fora|caiu|caido|funcionando
  |respondendo|responding|working|ok|okay|fine|connected|conectado|ping|vivo|de\ pe|acessivel
  |accessible|status|estado|situacao|problem|problema|problemas|issue|issues|lento|slow|reach
  |travado|frozen|dead|morto|talk\ to|falar\ com|connect|conectar|acessar|reach)\b""")
HEALTH_ALONE = _rx(r"^(?:health|healthcheck|health\ check|ping|saude)$")
RUNNING_WORD = _rx(r"\b(?:running|rodando|executando|de\ pe)\b")

LOG = _rx(r"""\b(?:logs?|stdlist|std\ list|joblog|output|saida|sysout|spool|stdout|stderr|trace
  |traceback|mensagem\ de\ erro|error\ message|error\ output)\b
  |^(?:e|and|what\ about)\ (?:o\ |os\ |the\ )?(?:erro|erros|error|errors)$""")
WHY = _rx(r"\b(?:why|porque|por\ que|pq|motivo|reason|causa|cause)\b")
WHAT_HAPPENED = _rx(r"""\b(?:what\ (?:happened|went\ wrong)|o\ que\ (?:aconteceu|houve|rolou|deu)
  |what(?:'s|s|\ is|\ was)\ (?:the\ )?(?:error|problem|issue)|what\ error|que\ erro
  |qual\ (?:foi\ |e\ |eh\ )?(?:o\ )?(?:erro|problema))\b""")

LIST_CUE = _rx(r"""\b(?:which|what(?:'s|s)?|quais|que|any|anything|anyone|something|algum|alguma
  |alguns|algumas|algo|tem|temos|ha|existe|existem|list|lista|listar|liste|show|mostra|mostre
  |mostrar|me\ da|give\ me|tell\ me|get|how\ many|quantos|quantas|all|todos|todas|everything
  |tudo|who|quem|count|teve|tiveram|houve|there(?:'s|\ is|\ are|\ were|\ was)?)\b""")
JOBS_WORD = _rx(r"\b(?:jobs|tarefas|failures|falhas|errors|erros|abends)\b")
LIST_VERB = re.compile(r"\b(?:list|lista|listar|liste|show|mostra|mostre|mostrar|quais|which|how many"
                        r"|quantos|quantas|jobs)\b")
STATUS_WORD = _rx(r"""\b(?:
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
COUNT = _rx(r"""\b(?:how\ many|quantos|quantas|count|number\ of|numero\ de|total\ de|quantidade\ de|qtd|qtos|qtas)\b""")
# Earlier plans: the bot sees only the current one, so these get "I can't answer that yet".
HISTORY = _rx(r"""\b(?:yesterday|ontem|anteontem|day\ before|last\ (?:week|month|year|monday|tuesday|wednesday|thursday
  |friday|saturday|sunday|weekend|plan)|semana\ passada|mes\ passado|ano\ passado|fim\ de\ semana\ passado
  |previous\ (?:plan|day|week)|plano\ anterior|dia\ anterior|(?:2|3|4|5|6|7|two|three|four|five|dois|tres|quatro|cinco)
  \ (?:days|dias)\ (?:ago|atras)|ha\ (?:2|3|4|5|6|7|dois|tres|quatro|cinco)\ dias|this\ week|essa\ semana|esta\ semana
  |nesta\ semana|nessa\ semana|last\ \d+\ days|ultimos\ \d+\ dias|historico|history|trend|tendencia)\b""")
# Words a request for a list may carry besides its filters ("list all the jobs in the plan, please").
LIST_FILLER = frozenset("""
which what whats what's quais qual que all todos todas os as o a the jobs job tarefas list lista listar liste show
mostra mostre mostrar me give tell get there are is were was be tem ha existem existe do da de dos das no na nos nas
plan plano current atual today hoje now agora in of from how many quantos quantas count number numero total
quantidade qtd qtos qtas are there's any algum alguns everything tudo every each entire whole inteiro in hand
have has we voce vc temos exist existing there existe right cada
""".split())
STATUS_QUESTION = _rx(r"""\b(?:status|estado|situacao|state|progress|andamento|how(?:'s|\ is)\ it
  |como\ (?:esta|ta|anda|ficou)\ (?:ele|ela|isso)|is\ it\ (?:done|finished|over|ok|running)
  |did\ it\ (?:finish|run|end|work|complete)|terminou|acabou|rodou|ja\ foi|still\ running
  |ainda\ (?:rodando|executando))\b""")
STREAM_WORD = _rx(r"\b(?:stream|jobstream|fluxo|cadeia|malha|flow|chain)\b")

# TWS internal states accepted verbatim by the command grammar (``jobs ABEND``).
TWS_STATES = frozenset({"ABEND", "ABENP", "ADD", "BOUND", "CANCL", "CANCELP", "DONE", "ERROR",
                         "EXEC", "EXTRN", "FAIL", "FENCE", "HOLD", "INTRO", "PEND", "READY",
                         "SCHED", "SUCC", "SUCCP", "SUPPR", "WAIT"})
