"""Washing calling lists in bulk: uploaded CSV files put through a dialer's own checks."""
