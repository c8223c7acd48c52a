"""HTTP providers: one module per vendor on the shared machinery (retry policy,
client session, rate limit) that lives beside them."""
