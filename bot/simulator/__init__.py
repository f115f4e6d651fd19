"""A TWS (HCL Workload Automation) simulator: a generated, deterministic current plan served over
the V2 REST surface of docs/tws-wire.md, with fault injection for tests and a virtual clock for
demos. ``resync simulator`` runs ``main``; tests use ``run_simulator``.

It follows the documentation, not the client: by default only the documented shapes; the
alternative shapes the client also reads are wire variants (``variants.py``, ``--wire``).
"""

from __future__ import annotations

from bot.simulator.server import DEFAULT_PASSWORD, DEFAULT_USER, Faults, Simulator, main, run_simulator

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USER", "Faults", "Simulator", "main", "run_simulator"]
