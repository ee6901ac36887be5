"""TLS settings shared by the four services: incomplete ones stop a service at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ragplane.runtime.tls import TlsSettings


def test_plaintext_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERT_FILE", "KEY_FILE", "CA_FILE", "REQUIRE_CLIENT_CERT"):
        monkeypatch.delenv(f"RAGPLANE_TLS_{name}", raising=False)
    tls = TlsSettings()
    assert not tls.serves_tls
    assert not tls.dials_tls


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="RAGPLANE_TLS_CERT_FILE and RAGPLANE_TLS_KEY_FILE"):
        TlsSettings(cert_file=cert)


def test_mutual_tls_needs_a_ca(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    with pytest.raises(ValidationError, match="needs RAGPLANE_TLS_CA_FILE"):
        TlsSettings(cert_file=cert, key_file=key, require_client_cert=True)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"missing\.pem is not a readable file"):
        TlsSettings(ca_file=tmp_path / "missing.pem")
