"""Persistence behind small interfaces: SQLite embedded by default (see base.py)."""
