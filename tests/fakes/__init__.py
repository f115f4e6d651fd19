"""Loopback fakes that speak the real wire protocols of the systems Resync talks to."""
