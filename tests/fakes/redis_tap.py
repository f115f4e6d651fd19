"""A loopback TCP relay in front of a real redis-server that can kill it at an exact command.

The relay parses the RESP commands the client sends (arrays of bulk strings, as redis-py writes
them) and forwards them one by one. Armed with ``kill_at(n, server)``, it kills the server just
before forwarding the n-th command from then on: the command never runs, the client sees its
connection drop. This puts a store outage at every step of a code path without touching the code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class RedisTap:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.commands: list[str] = []  # names of the commands forwarded since the last arm
        self.fired: str | None = None  # the command before which the server was killed
        self._countdown: int | None = None
        self._kill: Callable[[], None] | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> RedisTap:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def kill_at(self, n: int, kill: Callable[[], None]) -> None:
        self.commands, self.fired, self._countdown, self._kill = [], None, n, kill

    def disarm(self) -> None:
        self._countdown = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        back = asyncio.create_task(_pump(up_reader, writer))
        try:
            while True:
                command = await _read_command(reader)
                if command is None:
                    break
                raw, name = command
                if self._countdown is not None:
                    self._countdown -= 1
                    if self._countdown == 0 and self._kill is not None:
                        self._countdown, self.fired = None, name
                        self._kill()
                        break
                    self.commands.append(name)
                up_writer.write(raw)
                await up_writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            back.cancel()
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _read_command(reader: asyncio.StreamReader) -> tuple[bytes, str] | None:
    """One RESP array command: its raw bytes and its (upper-cased) name; None at end of stream."""
    header = await reader.readline()
    if not header:
        return None
    if not header.startswith(b"*"):  # an inline command
        return header, header.split(b" ", 1)[0].strip().decode().upper()
    parts, raw = [], [header]
    for _ in range(int(header[1:].strip())):
        size_line = await reader.readline()
        body = await reader.readexactly(int(size_line[1:].strip()) + 2)
        raw += [size_line, body]
        parts.append(body[:-2])
    name = parts[0].decode(errors="replace").upper() if parts else ""
    if name == "EVALSHA" or name == "EVAL":
        name += " " + (parts[3].decode(errors="replace") if len(parts) > 3 else "")
    elif len(parts) > 1:
        name += " " + parts[1].decode(errors="replace")
    return b"".join(raw), name
