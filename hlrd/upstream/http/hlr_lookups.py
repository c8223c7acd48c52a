"""hlr-lookups.com, API v2: HLR lookups over HTTPS with a signed request.

Every request carries the API key and a signature over what it says, so a captured
request cannot be replayed with another body or later than the vendor allows
(docs/vendors/hlr-lookups.md; the vendor's SDKs sign the same way):

    X-Digest-Key:       the API key
    X-Digest-Timestamp: Unix seconds
    X-Digest-Signature: hex HMAC-SHA256(secret, path + timestamp + METHOD + body)

`path` is relative to /api/v2 (`/hlr-lookup`), and `body` is the exact bytes sent: the
body is serialized once and those bytes are both signed and sent.
"""

from __future__ import annotations

import hashlib
import hmac

API_PREFIX = "/api/v2"


def signature(secret: str, path: str, timestamp: int, method: str, body: bytes) -> str:
    message = path.encode() + str(timestamp).encode() + method.upper().encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def auth_headers(
    key: str, secret: str, path: str, timestamp: int, method: str, body: bytes
) -> dict[str, str]:
    return {
        "X-Digest-Key": key,
        "X-Digest-Timestamp": str(timestamp),
        "X-Digest-Signature": signature(secret, path, timestamp, method, body),
    }
