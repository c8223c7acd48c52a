-- hlrd store schema 2, frozen as it shipped: tests/test_store_schema.py builds a file
-- from it and opens it with the current code. Never edit; add a store_vN.sql instead.
CREATE TABLE answers (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    checked_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    cost REAL NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT ''
);
CREATE INDEX answers_checked_at ON answers (checked_at);
PRAGMA user_version = 2;
