"""API keys: stored hashed, read from metadata, mapped to tenants and roles."""

from __future__ import annotations

import json

import pytest

from ragplane.runtime.auth import Authorizer, KeyRing, Role, key_digest, presented_key
from ragplane.runtime.errors import PermissionDenied, Unauthenticated

QUERY = "/ragplane.v1.QueryService/Query"
INGEST = "/ragplane.v1.QueryService/Ingest"
ROLES = {QUERY: Role.QUERY, INGEST: Role.INGEST}

KEYS = KeyRing.parse(
    json.dumps(
        {
            key_digest("reader-secret"): {"id": "reader", "tenants": ["acme"], "roles": ["query"]},
            key_digest("ops-secret"): {"id": "ops", "tenants": ["*"], "roles": ["admin"]},
        }
    ),
    "test keys",
)
authorizer = Authorizer(KEYS, ROLES)


def test_yaml_key_file_is_read_too() -> None:
    ring = KeyRing.parse(
        f"{key_digest('k')}:\n  id: app\n  tenants: [t1, t2]\n  roles: [query, ingest]\n", "yaml"
    )
    principal = ring.identify("k")
    assert principal is not None
    assert principal.tenants == {"t1", "t2"}


def test_a_bad_key_file_names_the_problem() -> None:
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        KeyRing.parse('{"abc": {"id": "x", "tenants": ["t"], "roles": ["query"]}}', "keys.json")
    with pytest.raises(ValueError, match="roles"):
        KeyRing.parse(
            json.dumps({key_digest("k"): {"id": "x", "tenants": ["t"], "roles": ["root"]}}), "k"
        )


def test_key_from_bearer_or_x_api_key() -> None:
    assert presented_key([("authorization", "Bearer abc")]) == "abc"
    assert presented_key([("x-api-key", "abc")]) == "abc"
    assert presented_key([("authorization", "Basic abc")]) is None
    assert presented_key([]) is None


def test_missing_or_unknown_key_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="no API key"):
        authorizer.authorize(QUERY, [], "acme")
    with pytest.raises(Unauthenticated, match="unknown API key"):
        authorizer.authorize(QUERY, [("x-api-key", "guess")], "acme")


def test_role_and_tenant_are_enforced() -> None:
    reader = [("x-api-key", "reader-secret")]
    assert authorizer.authorize(QUERY, reader, "acme").key_id == "reader"
    with pytest.raises(PermissionDenied, match="'ingest' role"):
        authorizer.authorize(INGEST, reader, "acme")
    with pytest.raises(PermissionDenied, match="tenant 'globex'"):
        authorizer.authorize(QUERY, reader, "globex")


def test_admin_may_do_anything_and_unlisted_methods_need_admin() -> None:
    ops = [("authorization", "Bearer ops-secret")]
    assert authorizer.authorize(INGEST, ops, "globex").key_id == "ops"
    with pytest.raises(PermissionDenied, match="'admin' role"):
        authorizer.authorize(
            "/ragplane.v1.QueryService/NewRpc", [("x-api-key", "reader-secret")], "acme"
        )
