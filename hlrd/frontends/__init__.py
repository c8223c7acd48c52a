"""Ways in for call-center systems: HTTP API (dialer plugins), later SMPP server and CSV."""
