"""The local console: a chat in the terminal, and a Notifier that prints alerts there.

It is the thinnest adapter: a line of input becomes an Event of kind "dm" from the local
operator (identity ``console:operator``); a reply becomes text. Confirm/Cancel buttons become a
y/N question answered on the next line; other buttons (choices, "Show log") are numbered, and a
number typed next presses one, while anything else is simply the next message.

It behaves like a terminal program: Slack markup (``*bold*``, `` `code` ``, ``<url|label>``) is
rendered for a terminal (bold when it is one, plain text when piped), an alert that arrives while
the operator is typing is printed above the prompt and the half-typed line is redrawn, and Ctrl-C
ends the program at once (input is read by a daemon thread, so nothing waits for Enter).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import Any, TextIO

from bot.events import ACTION_CANCEL, ACTION_CONFIRM, Button, Event, Handle, Posted, Reply
from bot.nlu import detect_language
from bot.texts import say

_MARK = {"info": "•", "success": "✔", "warning": "!", "error": "✖"}
_YES = {"y", "yes", "s", "sim"}
_PROMPT = "you> "

_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)>")
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_QUOTE = re.compile(r"^&gt; ?|^> ?", re.MULTILINE)
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def to_terminal(text: str, *, styled: bool = False) -> str:
    """Slack mrkdwn as a terminal shows it: no raw backticks or asterisks; bold/dim when ``styled``."""
    bold, dim, off = ("\x1b[1m", "\x1b[2m", "\x1b[0m") if styled else ("", "", "")
    text = _LINK.sub(lambda m: f"{m[2]} ({m[1]})", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _CODE.sub(lambda m: f"{bold}{m[1]}{off}", text)
    text = _BOLD.sub(lambda m: f"{bold}{m[1]}{off}", text)
    text = _ITALIC.sub(lambda m: f"{dim}{m[1]}{off}", text)
    text = _STRIKE.sub(r"\1", text)
    text = _QUOTE.sub("  │ ", text)
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def render(reply: Reply, *, styled: bool = False) -> str:
    """A reply as terminal text."""
    def plain(text: str) -> str:
        return to_terminal(text, styled=styled)

    lines = []
    if reply.title:
        lines.append(f"{_MARK[reply.level]} {plain(reply.title)}")
    if reply.text:
        lines.append(plain(reply.text) if reply.title else f"{_MARK[reply.level]} {plain(reply.text)}")
    width = max((len(f.label) for f in reply.fields), default=0)
    lines += [f"  {f.label.ljust(width)}  {plain(f.value)}" for f in reply.fields]
    if reply.code:
        if reply.code_title:
            lines.append(f"  ({plain(reply.code_title)})")
        lines.append(textwrap.indent(reply.code.rstrip("\n"), "  │ "))  # code is shown verbatim
    if reply.context:
        lines.append(f"  — {plain(reply.context)}")
    return "\n".join(lines)


class Terminal:
    """One output stream shared by the chat and the alerts, aware of the prompt being typed at.

    Text printed while the operator is at the prompt (an alert) clears the prompt line first and
    redraws it, with what was typed so far, afterwards: it never lands in the middle of the input.
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.styled = _isatty(self.out)
        self._prompt: str | None = None
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            if self._prompt is not None and self.styled:
                self.out.write("\r\x1b[2K" + text + "\n" + self._prompt + _typed())
            else:
                self.out.write(text + "\n")
            self.out.flush()

    def read(self, prompt: str = _PROMPT) -> str:
        """A line from stdin (blocking: call it from a thread), with the prompt known to ``write``."""
        with self._lock:
            self._prompt = prompt
        try:
            return input(prompt)
        finally:
            with self._lock:
                self._prompt = None


def _typed() -> str:
    """What the operator has typed so far at the prompt ('' without readline)."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return ""
    return readline.get_line_buffer()


def _isatty(out: Any) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


async def _in_thread(read: Callable[[], str]) -> str:
    """``read()`` in a daemon thread: Ctrl-C (or the end of the program) never waits for it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def settle(result: str | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result or "")

    def work() -> None:
        try:
            line = read()
        except BaseException as exc:  # EOFError, KeyboardInterrupt: handed to the loop as they are
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, line, None)

    threading.Thread(target=work, name="console-input", daemon=True).start()
    return await done


class Console:
    """An interactive chat loop over a text stream (stdin by default)."""

    def __init__(self, handle: Handle, *, read: Callable[[], str] | None = None, out: TextIO | None = None,
                 user: str = "operator", lang: str | None = None, terminal: Terminal | None = None) -> None:
        self.handle = handle
        self.terminal = terminal or Terminal(out)
        self.read = read or self.terminal.read
        self.user = user
        self.lang = lang
        self._choices: tuple[Button, ...] = ()
        self._last_lang = lang or "en"

    @property
    def out(self) -> TextIO:
        return self.terminal.out

    def event(self, **fields: object) -> Event:
        """An event from the local operator (the policy knows them as ``console:operator``)."""
        return Event(platform="console", workspace="local", channel="console", user_id=self.user,
                     user_name=self.user, lang=self.lang, **fields)  # type: ignore[arg-type]

    async def ask(self) -> str | None:
        try:
            return await _in_thread(self.read)
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
            self.print(render(reply, styled=self.terminal.styled))
            confirm = next((b for b in reply.buttons if b.action_id == ACTION_CONFIRM), None)
            if confirm is not None:
                followed += await self.send(await self._confirmation(confirm, reply.lang))
            elif reply.buttons:
                self._choices = reply.buttons
                for number, button in zip(itertools.count(1), reply.buttons):
                    self.print(f"  [{number}] {to_terminal(button.label)}")
        return replies + followed

    async def _confirmation(self, confirm: Button, lang: str | None) -> Event:
        self.print(say(lang or self._last_lang, "confirm_console"))
        answer = (await self.ask() or "").strip().lower()
        action = ACTION_CONFIRM if answer in _YES else ACTION_CANCEL
        return self.event(kind="action", action_id=action, action_value=confirm.value, message_ref="console")

    def print(self, text: str) -> None:
        self.terminal.write(text)


class ConsoleNotifier:
    """Alerts for the ``console`` target, printed in the terminal (``resync demo``), above the prompt."""

    def __init__(self, out: TextIO | None = None, *, terminal: Terminal | None = None) -> None:
        self.terminal = terminal or Terminal(out)
        self._refs = itertools.count(1)

    def handles(self, target: str) -> bool:
        return target == "console" or target.startswith("console:")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        ref = f"console-{next(self._refs)}"
        lang = reply.lang or "en"
        prefix = "  ↳ " if thread else "\n" + say(lang, "console_alert") + " "
        lines = [prefix + render(reply, styled=self.terminal.styled).replace("\n", "\n    ")]
        lines += [f"    ({say(lang, 'console_button', label=to_terminal(b.label))})" for b in reply.buttons]
        self.terminal.write("\n".join(lines))
        return Posted(target=target, message_ref=ref, thread=thread or ref)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        text = to_terminal(reply.title or reply.text, styled=self.terminal.styled)
        self.terminal.write(f"{say(reply.lang or 'en', 'console_update', ref=message_ref)} {text}")
