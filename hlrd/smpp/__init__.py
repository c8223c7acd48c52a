"""Sans-io SMPP 3.4 core (codec, receipts, session) plus a thin asyncio transport.

Shared by the daemon's upstream client, its SMPP server front end and the simulator.
"""
