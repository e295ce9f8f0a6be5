"""Conductor's key-based auth, the pure part: API keys stored hashed, and the short-lived tokens
``POST /api/token`` signs and the authorizer checks. Standard library only.

A token is ``base64url(claims JSON) "." base64url(HMAC-SHA256(secret, that first part))``, the
claims ``{"keyId", "iat", "exp"}`` (epoch seconds). A key's secret is kept only as a salted scrypt
hash, compared in constant time.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

KEY_PREFIX = "apikey#"
# scrypt's cost: 16 MiB of memory and ~50 ms a check, once per token (the SDK asks for one an hour).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCHEME = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}"
# Orkes' error codes in a 401's body: Conductor's SDKs renew their token when they see either one.
EXPIRED_TOKEN = "EXPIRED_TOKEN"  # noqa: S105 - an error code, not a secret
INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
MAX_TOKEN_CHARS = 1024


class TokenRejected(Exception):
    """The token is malformed, forged, expired or for a key that is gone; ``code`` says which."""

    def __init__(self, message: str, code: str = INVALID_TOKEN) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class StoredKey:
    """An API key as the table holds it: never its secret, only the secret's hash."""

    key_id: str
    salt: bytes
    digest: bytes
    scheme: str = SCHEME
    revoked: bool = False


@dataclass(frozen=True)
class TokenClaims:
    key_id: str
    issued_at: int
    expires_at: int


def new_key_id() -> str:
    return str(uuid.uuid4())


def new_key_secret() -> str:
    return secrets.token_urlsafe(32)


def _scrypt(secret: str, salt: bytes, scheme: str) -> bytes:
    name, n, r, p = scheme.split("$")
    if name != "scrypt":
        raise ValueError(f"unknown key hash scheme {name}")
    return hashlib.scrypt(secret.encode(), salt=salt, n=int(n), r=int(r), p=int(p), maxmem=64 * 1024 * 1024, dklen=32)


def hash_key(key_id: str, secret: str) -> StoredKey:
    salt = secrets.token_bytes(16)
    return StoredKey(key_id, salt, _scrypt(secret, salt, SCHEME))


def secret_matches(stored: StoredKey, secret: str) -> bool:
    return hmac.compare_digest(_scrypt(secret, stored.salt, stored.scheme), stored.digest)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(signing_secret: bytes, payload: str) -> bytes:
    return hmac.new(signing_secret, payload.encode("ascii"), hashlib.sha256).digest()


def sign_token(signing_secret: bytes, key_id: str, now: float, lifetime_seconds: int) -> str:
    claims = {"keyId": key_id, "iat": int(now), "exp": int(now) + lifetime_seconds}
    payload = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64encode(_signature(signing_secret, payload))}"


def check_token(signing_secret: bytes, token: str, now: float) -> TokenClaims:
    """The token's claims if it is ours, untampered and unexpired; else ``TokenRejected``.
    (That its key still exists and is not revoked is the caller's check: it needs the table.)"""
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    payload, dot, signature = token.partition(".")
    if not dot or not payload or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise TokenRejected("The token is malformed")
    try:
        given = _b64decode(signature)
    except (binascii.Error, ValueError) as exc:
        raise TokenRejected("The token is malformed") from exc
    if not hmac.compare_digest(given, _signature(signing_secret, payload)):
        raise TokenRejected("The token's signature is not valid")
    try:
        claims = json.loads(_b64decode(payload))
        parsed = TokenClaims(str(claims["keyId"]), int(claims["iat"]), int(claims["exp"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise TokenRejected("The token is malformed") from exc
    if now >= parsed.expires_at:
        raise TokenRejected("The token has expired; ask POST /api/token for a new one", EXPIRED_TOKEN)
    return parsed
