"""Plain data and numbering facts: no I/O. Shared by the daemon and the simulator."""
