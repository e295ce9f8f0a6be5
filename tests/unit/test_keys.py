"""Conductor key auth's pure part: tokens (signing, expiry, tampering) and hashed keys."""

import base64
import json

import pytest

from workflow_api.key_auth import KeyAuth, Unauthenticated
from workflow_api.keys import (
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    StoredKey,
    TokenRejected,
    check_token,
    hash_key,
    new_key_id,
    new_key_secret,
    secret_matches,
    sign_token,
)

SECRET = b"signing-secret-of-the-stack"
NOW = 1_800_000_000.0


def test_a_token_carries_its_key_and_lifetime_and_checks_until_it_expires() -> None:
    token = sign_token(SECRET, "key-1", NOW, 3600)
    claims = check_token(SECRET, token, NOW + 3599)
    assert (claims.key_id, claims.issued_at, claims.expires_at) == ("key-1", int(NOW), int(NOW) + 3600)
    assert check_token(SECRET, f"Bearer {token}", NOW).key_id == "key-1"
    with pytest.raises(TokenRejected) as expired:
        check_token(SECRET, token, NOW + 3600)
    assert expired.value.code == EXPIRED_TOKEN


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = sign_token(b"someone else's secret", "key-1", NOW, 3600)
    with pytest.raises(TokenRejected) as refused:
        check_token(SECRET, token, NOW)
    assert refused.value.code == INVALID_TOKEN
    assert "signature" in refused.value.message


def test_a_tampered_token_is_refused() -> None:
    payload, signature = sign_token(SECRET, "key-1", NOW, 60).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    longer = {**claims, "exp": claims["exp"] + 10**6}
    forged = base64.urlsafe_b64encode(json.dumps(longer).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRejected):
        check_token(SECRET, f"{forged}.{signature}", NOW)
    with pytest.raises(TokenRejected):
        check_token(SECRET, f"{payload}.{signature[:-2]}AA", NOW)


@pytest.mark.parametrize("token", ["", "abc", ".", "a.", ".b", "a.b.c", "é.é", "x" * 2000 + ".y", "a.!!!"])
def test_a_malformed_token_is_refused_not_crashed_on(token: str) -> None:
    with pytest.raises(TokenRejected) as refused:
        check_token(SECRET, token, NOW)
    assert refused.value.code == INVALID_TOKEN


def test_a_signed_token_with_bad_claims_is_refused() -> None:
    payload = base64.urlsafe_b64encode(b'{"keyId": "k"}').rstrip(b"=").decode()
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()).decode()
    with pytest.raises(TokenRejected, match="malformed"):
        check_token(SECRET, f"{payload}.{signature.rstrip('=')}", NOW)


def test_a_key_is_stored_as_a_salted_hash_that_only_its_secret_matches() -> None:
    secret = new_key_secret()
    stored = hash_key(new_key_id(), secret)
    again = hash_key(stored.key_id, secret)
    assert secret.encode() not in stored.digest and stored.salt != again.salt and stored.digest != again.digest
    assert stored.scheme.startswith("scrypt$") and len(stored.salt) == 16 and len(stored.digest) == 32
    assert secret_matches(stored, secret) and secret_matches(again, secret)
    assert not secret_matches(stored, secret + "x")
    assert not secret_matches(stored, "")
    assert len(secret) >= 40 and new_key_secret() != secret


class _Keys:
    """An in-memory stand-in for ApiKeyStore."""

    def __init__(self, *keys: StoredKey) -> None:
        self.keys = {key.key_id: key for key in keys}

    def get(self, key_id: str) -> StoredKey | None:
        return self.keys.get(key_id)


def _auth(keys: _Keys, now: list[float]) -> KeyAuth:
    return KeyAuth(keys, lambda: SECRET, 3600, clock=lambda: now[0])  # type: ignore[arg-type]


def test_a_token_is_issued_only_for_a_known_unrevoked_key_with_its_secret() -> None:
    keys, now = _Keys(hash_key("k1", "right")), [NOW]
    auth = _auth(keys, now)
    token = auth.issue_token("k1", "right")
    assert auth.check(token).key_id == "k1"
    for key_id, secret in (("k1", "wrong"), ("nobody", "right")):
        with pytest.raises(Unauthenticated) as refused:
            auth.issue_token(key_id, secret)
        assert refused.value.status == 401 and refused.value.message == "Invalid keyId or keySecret"
    now[0] += 3600
    with pytest.raises(TokenRejected) as expired:
        auth.check(token)
    assert expired.value.code == EXPIRED_TOKEN


def test_a_revoked_key_gets_no_token_and_its_tokens_stop() -> None:
    keys, now = _Keys(hash_key("k1", "right")), [NOW]
    auth = _auth(keys, now)
    token = auth.issue_token("k1", "right")
    stored = keys.keys["k1"]
    keys.keys["k1"] = StoredKey(stored.key_id, stored.salt, stored.digest, stored.scheme, revoked=True)
    with pytest.raises(TokenRejected, match="revoked"):
        auth.check(token)
    with pytest.raises(Unauthenticated):
        auth.issue_token("k1", "right")
    del keys.keys["k1"]
    with pytest.raises(TokenRejected):
        auth.check(token)


def test_the_signing_secret_is_read_once() -> None:
    reads: list[int] = []
    keys = _Keys(hash_key("k1", "s"))
    auth = KeyAuth(keys, lambda: reads.append(1) or SECRET, 60)  # type: ignore[arg-type, func-returns-value]
    for _ in range(3):
        auth.check(auth.issue_token("k1", "s"))
    assert reads == [1]
