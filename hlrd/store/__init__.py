"""Persistence behind small interfaces: SQLite embedded by default (see base.py).

keyer = await open_keyer(cfg.store)         # HMAC key from env or the key file
store = await open_store(cfg.store)         # AnswerStore
store.put(StoredAnswer(keyer.key("48601234567"), ...))
answer = await store.get(keyer.key("48601234567"))
await store.close()
"""

from .base import AnswerStore, StoredAnswer, StoreError, StoreStats
from .factory import open_store
from .keys import KeyFileError, NumberKeyer, open_keyer

__all__ = [
    "AnswerStore",
    "KeyFileError",
    "NumberKeyer",
    "StoreError",
    "StoreStats",
    "StoredAnswer",
    "open_keyer",
    "open_store",
]
