"""Conductor's key-based auth (AuthType CONDUCTOR_KEYS): ``POST /api/token`` trades a keyId and
keySecret for a short-lived token; the authorizer admits a request whose ``X-Authorization``
carries one that is ours, unexpired, and whose key still exists and is not revoked."""

import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from .adapters.api_keys import ApiKeyStore, signing_secret
from .errors import WorkflowApiError
from .keys import (
    INVALID_TOKEN,
    StoredKey,
    TokenClaims,
    TokenRejected,
    check_token,
    hash_key,
    secret_matches,
    sign_token,
)
from .models import _Wire


class AuthSettings(BaseModel):
    """What the token route and the authorizer read of their environment (template.yaml)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    signing_secret_id: str = Field(alias="TOKEN_SIGNING_SECRET_ARN", min_length=1)
    # The SDKs renew their token every 45 minutes (conductor-python's auth_token_ttl_min), and on a
    # 401 that says EXPIRED_TOKEN or INVALID_TOKEN: an hour leaves them a margin.
    token_lifetime_seconds: int = Field(default=3600, ge=60, le=86400, alias="TOKEN_LIFETIME_SECONDS")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "AuthSettings":
        return cls.model_validate(dict(os.environ if environ is None else environ))


class GenerateTokenRequest(_Wire):
    """Conductor's ``GenerateTokenRequest``, the body of ``POST /api/token``."""

    key_id: str = Field(min_length=1, max_length=128)
    key_secret: str = Field(min_length=1, max_length=256)


class TokenAnswer(_Wire):
    token: str


class Unauthenticated(WorkflowApiError):
    status = 401


class KeyAuth:
    def __init__(
        self,
        keys: ApiKeyStore,
        load_secret: Callable[[], bytes],
        lifetime_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._load_secret = load_secret
        self._secret: bytes | None = None
        self._lock = threading.Lock()
        self._lifetime = lifetime_seconds
        self._clock = clock

    def _signing_secret(self) -> bytes:
        """Read on first use and kept for the container's life (rotating it means a new deploy)."""
        with self._lock:
            if self._secret is None:
                self._secret = self._load_secret()
            return self._secret

    def issue_token(self, key_id: str, key_secret: str) -> str:
        stored = self._keys.get(key_id)
        # The hash is computed for an unknown key too, so timing does not tell which keyIds exist.
        matches = secret_matches(stored, key_secret) if stored else secret_matches(_decoy(), key_secret)
        if stored is None or stored.revoked or not matches:
            raise Unauthenticated("Invalid keyId or keySecret")
        return sign_token(self._signing_secret(), key_id, self._clock(), self._lifetime)

    def check(self, token: str) -> TokenClaims:
        """The token's claims, or ``TokenRejected`` (malformed, forged, expired, key revoked or gone)."""
        claims = check_token(self._signing_secret(), token, self._clock())
        stored = self._keys.get(claims.key_id)
        if stored is None or stored.revoked:
            raise TokenRejected("The token's key has been revoked", INVALID_TOKEN)
        return claims


@cache
def _decoy() -> StoredKey:
    return hash_key("decoy", "decoy")


@cache
def key_auth() -> KeyAuth:
    """Built on first use in a cold start, from the function's environment."""
    config = AuthSettings.from_environment()
    return KeyAuth(
        ApiKeyStore(config.table_name),
        lambda: signing_secret(config.signing_secret_id),
        config.token_lifetime_seconds,
    )
