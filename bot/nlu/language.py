"""English or Brazilian Portuguese, by counting marker words, accents and endings."""

from __future__ import annotations

import re

from bot.nlu.text import clean_text, strong_name, tokenize

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
    return vote(text, tokenize(clean_text(text)))


def vote(text: str, tokens: list[tuple[str, str, int]]) -> str:
    pt = en = 0
    for raw, folded, _ in tokens:
        if strong_name(raw, folded):  # a name's letters say nothing of the language (ÉXTRAÇÃO_01)
            continue
        pt += 2 * len(_PT_ACCENT.findall(raw))
        if folded in _PT_WORDS:
            pt += 1
        elif folded in _EN_WORDS:
            en += 1
        elif len(folded) > 4 and _PT_ENDING.search(folded):
            pt += 1
        elif len(folded) > 4 and _EN_ENDING.search(folded):
            en += 1
    return "pt" if pt > en else "en"
