"""API keys in gRPC metadata: who is calling, for which tenants, in which roles.

Keys are stored as SHA-256 hex digests (a mounted secret or an environment variable holds
``{"<sha256 of key>": {"id": "...", "tenants": ["acme"], "roles": ["query"]}}``), so a leaked
key file does not leak keys. The key itself is never logged: only its id is.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import grpc
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragplane.runtime.context import RpcContext
from ragplane.runtime.errors import PermissionDenied, Unauthenticated
from ragplane.runtime.handlers import StreamBehavior, UnaryBehavior, WrappingInterceptor

ANY_TENANT = "*"
_UNGUARDED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class Role(StrEnum):
    QUERY = "query"
    INGEST = "ingest"
    # May do everything, for every tenant it is given.
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller behind an API key."""

    key_id: str
    tenants: frozenset[str]
    roles: frozenset[Role]

    def may_act_for(self, tenant: str) -> bool:
        return ANY_TENANT in self.tenants or tenant in self.tenants

    def has_role(self, role: Role) -> bool:
        return Role.ADMIN in self.roles or role in self.roles


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    tenants: list[str] = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Known keys by digest."""

    def __init__(self, principals_by_digest: Mapping[str, Principal]) -> None:
        self._by_digest = dict(principals_by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """Keys from JSON or YAML text; raises ValueError naming the source and the problem."""
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{source}: not JSON or YAML ({error})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: expected an object of sha256 digest -> key entry")
        principals = {}
        for digest, entry in raw.items():
            if not isinstance(digest, str) or len(digest) != 64:
                raise ValueError(f"{source}: {str(digest)[:12]}... is not a sha256 hex digest")
            try:
                parsed = _KeyEntry.model_validate(entry)
            except ValidationError as error:
                raise ValueError(f"{source}: key {digest[:12]}...: {error}") from None
            principals[digest.lower()] = Principal(
                parsed.id, frozenset(parsed.tenants), frozenset(parsed.roles)
            )
        return cls(principals)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        return cls.parse(path.read_text(), str(path))

    def identify(self, key: str) -> Principal | None:
        return self._by_digest.get(key_digest(key))


def presented_key(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The key from ``authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    for name, value in metadata or ():
        if not isinstance(value, str):
            continue
        if name == "x-api-key" and value.strip():
            return value.strip()
        if name == "authorization":
            scheme, _, credential = value.partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
    return None


# Called with the principal of each authenticated call (the audit trail records the key id).
PrincipalObserver = Callable[[Principal], None]


class Authorizer:
    """Decides whether the holder of a key may call a method for a tenant."""

    def __init__(self, keys: KeyRing, roles_by_method: Mapping[str, Role]) -> None:
        self._keys = keys
        # Methods not listed need the admin role: a new RPC is closed until someone opens it.
        self._roles_by_method = dict(roles_by_method)

    def identify(self, metadata: Any) -> Principal:
        """The caller behind the key in the metadata; UNAUTHENTICATED without a known key."""
        key = presented_key(metadata)
        if key is None:
            raise Unauthenticated(
                "no API key: send it as 'authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        principal = self._keys.identify(key)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal

    def permit(self, principal: Principal, method: str, tenant: str) -> None:
        """PERMISSION_DENIED unless the caller has the method's role and may act for the tenant."""
        role = self._roles_by_method.get(method, Role.ADMIN)
        if not principal.has_role(role):
            raise PermissionDenied(f"API key {principal.key_id!r} lacks the {role.value!r} role")
        if tenant and not principal.may_act_for(tenant):
            raise PermissionDenied(
                f"API key {principal.key_id!r} may not act for tenant {tenant!r}"
            )

    def authorize(self, method: str, metadata: Any, tenant: str) -> Principal:
        principal = self.identify(metadata)
        self.permit(principal, method, tenant)
        return principal


class AuthInterceptor(WrappingInterceptor):
    """Authenticates every call but health and reflection, before its handler runs."""

    def __init__(self, authorizer: Authorizer, observe: PrincipalObserver | None = None) -> None:
        self._authorizer = authorizer
        self._observe = observe

    def applies_to(self, method: str) -> bool:
        return not method.startswith(_UNGUARDED_PREFIXES)

    def _admit(self, method: str, request: Any, context: RpcContext) -> None:
        principal = self._authorizer.identify(context.invocation_metadata())
        # Observed before the permission check, so that refused calls are traced to their key.
        if self._observe is not None:
            self._observe(principal)
        self._authorizer.permit(principal, method, str(getattr(request, "tenant", "") or ""))

    def wrap_unary(
        self, method: str, behavior: UnaryBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> UnaryBehavior:
        async def handle(request: Any, context: RpcContext) -> Any:
            self._admit(method, request, context)
            return await behavior(request, context)

        return handle

    def wrap_stream(
        self, method: str, behavior: StreamBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> StreamBehavior:
        async def handle(request: Any, context: RpcContext) -> AsyncIterator[Any]:
            self._admit(method, request, context)
            async for response in behavior(request, context):
                yield response

        return handle


def load_key_ring(path: Path | None, inline: str) -> KeyRing | None:
    """The configured keys, or None when none are configured (authentication off)."""
    if path is not None:
        return KeyRing.load(path)
    if inline:
        return KeyRing.parse(inline, "inline API keys")
    return None
