"""Upstream HLR lookup providers: SMPP (windowed binds) and, later, HTTP adapters."""
