"""hlr-lookups.com adapter: the request signature as the vendor checks it."""

from __future__ import annotations

from hlrd.upstream.http.hlr_lookups import auth_headers, signature

BODY = b'{"msisdn":"+491788735000"}'


def test_the_signature_matches_the_vendors_test_vector() -> None:
    assert signature("hlr-secret-value", "/hlr-lookup", 1790000000, "POST", BODY) == (
        "997fc8db45a0ac1c0e8ecc70bb2de21de9967b3c3c8ae50803aece5962aec6c8"
    )


def test_any_change_to_what_is_signed_changes_the_signature() -> None:
    base = signature("hlr-secret-value", "/hlr-lookup", 1790000000, "POST", BODY)
    changed = [
        signature("other-secret", "/hlr-lookup", 1790000000, "POST", BODY),
        signature("hlr-secret-value", "/hlr-lookups", 1790000000, "POST", BODY),
        signature("hlr-secret-value", "/hlr-lookup", 1790000001, "POST", BODY),
        signature("hlr-secret-value", "/hlr-lookup", 1790000000, "GET", BODY),
        signature("hlr-secret-value", "/hlr-lookup", 1790000000, "POST", BODY + b" "),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_the_headers_carry_key_timestamp_and_signature() -> None:
    headers = auth_headers("key-1", "hlr-secret-value", "/hlr-lookup", 1790000000, "post", BODY)
    assert headers == {
        "X-Digest-Key": "key-1",
        "X-Digest-Timestamp": "1790000000",
        "X-Digest-Signature": "997fc8db45a0ac1c0e8ecc70bb2de21de9967b3c3c8ae50803aece5962aec6c8",
    }
