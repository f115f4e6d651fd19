"""The local console: a chat in the terminal, and a Notifier that prints alerts there.

It is the thinnest adapter: a line of input becomes an Event of kind "dm" from the local
operator (identity ``console:operator``); a reply becomes text. Confirm/Cancel buttons become a
y/N question answered on the next line; other buttons (choices, "Show log") are numbered, and a
number typed next presses one, while anything else is simply the next message.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import textwrap
from collections.abc import Callable
from typing import TextIO

from bot.events import ACTION_CANCEL, ACTION_CONFIRM, Button, Event, Handle, Posted, Reply
from bot.nlu import detect_language

_MARK = {"info": "•", "success": "✔", "warning": "!", "error": "✖"}
_YES = {"y", "yes", "s", "sim"}


def render(reply: Reply) -> str:
    """A reply as terminal text."""
    lines = []
    if reply.title:
        lines.append(f"{_MARK[reply.level]} {reply.title}")
    lines.append(reply.text if reply.title else f"{_MARK[reply.level]} {reply.text}")
    width = max((len(f.label) for f in reply.fields), default=0)
    lines += [f"  {f.label.ljust(width)}  {f.value}" for f in reply.fields]
    if reply.code:
        if reply.code_title:
            lines.append(f"  ({reply.code_title})")
        lines.append(textwrap.indent(reply.code.rstrip("\n"), "  │ "))
    if reply.context:
        lines.append(f"  — {reply.context}")
    return "\n".join(lines)


class Console:
    """An interactive chat loop over a text stream (stdin by default)."""

    def __init__(self, handle: Handle, *, read: Callable[[], str] | None = None, out: TextIO = sys.stdout,
                 user: str = "operator", lang: str | None = None) -> None:
        self.handle = handle
        self.read = read or (lambda: input("you> "))
        self.out = out
        self.user = user
        self.lang = lang
        self._choices: tuple[Button, ...] = ()
        self._last_lang = lang or "en"

    def event(self, **fields: object) -> Event:
        """An event from the local operator (the policy knows them as ``console:operator``)."""
        return Event(platform="console", workspace="local", channel="console", user_id=self.user,
                     user_name=self.user, lang=self.lang, **fields)  # type: ignore[arg-type]

    async def ask(self) -> str | None:
        try:
            return await asyncio.to_thread(self.read)
        except EOFError:
            return None

    async def run(self) -> None:
        while (line := await self.ask()) is not None:
            line = line.strip()
            if line.lower() in {"quit", "exit", "sair"}:
                return
            if line.isdigit() and 1 <= int(line) <= len(self._choices):
                button = self._choices[int(line) - 1]
                await self.send(self.event(kind="action", action_id=button.action_id, action_value=button.value))
            elif line:
                self._last_lang = self.lang or detect_language(line)
                await self.send(self.event(text=line, kind="dm"))

    async def send(self, event: Event) -> list[Reply]:
        """Deliver one event and print what comes back; a confirmation is answered right away."""
        replies = await self.handle(event)
        followed: list[Reply] = []
        self._choices = ()
        for reply in replies:
            self.print(render(reply))
            confirm = next((b for b in reply.buttons if b.action_id == ACTION_CONFIRM), None)
            if confirm is not None:
                followed += await self.send(await self._confirmation(confirm))
            elif reply.buttons:
                self._choices = reply.buttons
                for number, button in zip(itertools.count(1), reply.buttons):
                    self.print(f"  [{number}] {button.label}")
        return replies + followed

    async def _confirmation(self, confirm: Button) -> Event:
        self.print("Confirma? [s/N]" if self._last_lang == "pt" else "Confirm? [y/N]")
        answer = (await self.ask() or "").strip().lower()
        action = ACTION_CONFIRM if answer in _YES else ACTION_CANCEL
        return self.event(kind="action", action_id=action, action_value=confirm.value, message_ref="console")

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


class ConsoleNotifier:
    """Alerts for the ``console`` target, printed in the terminal (``resync demo``)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self._refs = itertools.count(1)

    def handles(self, target: str) -> bool:
        return target == "console" or target.startswith("console:")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        ref = f"console-{next(self._refs)}"
        prefix = "  ↳ " if thread else "\n[ALERT] "
        print(prefix + render(reply).replace("\n", "\n    "), file=self.out, flush=True)
        for button in reply.buttons:
            print(f"    (button: {button.label})", file=self.out)
        return Posted(target=target, message_ref=ref, thread=thread or ref)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        print(f"[UPDATE {message_ref}] {reply.title or reply.text}", file=self.out, flush=True)
