"""Where a name lives in the current plan: a workstation, a job stream, both or neither.

Grammar cannot tell "no LNX_ETL01" (a workstation) from "no FECHAMENTO_MENSAL" (a stream): in
Portuguese both take the same preposition. So the tools ask the plan. A lookup is two counts
(cheap on TWS: one small answer each) and is remembered for a minute; suggestions for a name
that matches nothing come from an index of every stream and workstation name, built only when a
name is missing and refreshed with the plan (every few minutes).
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.tws.client import TwsClient


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    """What ``name`` is in the plan: how many jobs run on it as a workstation, and in it as a stream."""

    name: str
    on_workstation: int
    in_stream: int

    @property
    def kind(self) -> str | None:
        """"workstation", "stream", or None when the plan has neither (both: the stream wins,
        as the narrower one, unless it has no jobs)."""
        if self.in_stream:
            return "stream"
        if self.on_workstation:
            return "workstation"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Index:
    streams: tuple[str, ...]
    workstations: tuple[str, ...]
    built: float


class PlaceIndex:
    """Remembered lookups of names in the plan; one per agent, shared by every conversation."""

    def __init__(self, *, ttl: float = 60.0, index_ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._index_ttl = index_ttl
        self._clock = clock
        self._places: dict[str, tuple[float, Place]] = {}
        self._index: _Index | None = None
        self._lock = asyncio.Lock()

    async def place(self, tws: TwsClient, name: str) -> Place:
        name = name.strip().upper()
        now = self._clock()
        cached = self._places.get(name)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        on_ws, in_stream = await asyncio.gather(tws.count_jobs(workstation=name), tws.count_jobs(stream=name))
        place = Place(name=name, on_workstation=on_ws, in_stream=in_stream)
        if len(self._places) > 2000:
            self._places.clear()
        self._places[name] = (now, place)
        return place

    async def similar(self, tws: TwsClient, name: str, *, kinds: tuple[str, ...] = ("workstation", "stream"),
                      limit: int = 5) -> list[tuple[str, str]]:
        """(kind, name) of plan names close to ``name``, closest first."""
        index = await self._current(tws)
        name = name.strip().upper()
        found: list[tuple[float, str, str]] = []
        for kind, names in (("workstation", index.workstations), ("stream", index.streams)):
            if kind not in kinds:
                continue
            for close in difflib.get_close_matches(name, names, n=limit, cutoff=0.6):
                found.append((difflib.SequenceMatcher(None, name, close).ratio(), kind, close))
        found.sort(key=lambda item: -item[0])
        return [(kind, close) for _, kind, close in found[:limit]]

    async def _current(self, tws: TwsClient) -> _Index:
        async with self._lock:
            if self._index is None or self._clock() - self._index.built > self._index_ttl:
                streams = await tws.query_streams()
                self._index = _Index(streams=tuple(sorted({s.name for s in streams})),
                                     workstations=tuple(sorted({s.workstation for s in streams})),
                                     built=self._clock())
            return self._index
