"""Optional TLS and mutual TLS for every ragplane server and every channel between services.

One set of variables (prefix RAGPLANE_TLS_) serves all four services, because in a deployment
they share one certificate authority and mount their certificates the same way (Kubernetes
secrets as files). The same certificate is a service's server certificate and, on its outbound
channels, its client certificate.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TlsSettings(BaseSettings):
    """RAGPLANE_TLS_CERT_FILE / _KEY_FILE / _CA_FILE / _REQUIRE_CLIENT_CERT / _SERVER_NAME."""

    model_config = SettingsConfigDict(env_prefix="RAGPLANE_TLS_", frozen=True, extra="ignore")

    # PEM certificate chain and private key of this service; unset: plaintext.
    cert_file: Path | None = None
    key_file: Path | None = None
    # PEM CA bundle that peers' certificates must chain to.
    ca_file: Path | None = None
    # Mutual TLS: servers refuse callers without a certificate signed by the CA.
    require_client_cert: bool = False
    # Name checked in servers' certificates instead of the target's host (for IP targets).
    server_name: str = ""

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("RAGPLANE_TLS_CERT_FILE and RAGPLANE_TLS_KEY_FILE go together")
        if self.require_client_cert and self.ca_file is None:
            raise ValueError("RAGPLANE_TLS_REQUIRE_CLIENT_CERT needs RAGPLANE_TLS_CA_FILE")
        if self.require_client_cert and self.cert_file is None:
            raise ValueError("RAGPLANE_TLS_REQUIRE_CLIENT_CERT needs RAGPLANE_TLS_CERT_FILE")
        for path in (self.cert_file, self.key_file, self.ca_file):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} is not a readable file")
        return self

    @property
    def serves_tls(self) -> bool:
        return self.cert_file is not None

    @property
    def dials_tls(self) -> bool:
        """Channels use TLS when this service has a certificate or trusts a CA."""
        return self.cert_file is not None or self.ca_file is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        assert self.cert_file is not None
        assert self.key_file is not None
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=_read(self.ca_file),
            require_client_auth=self.require_client_cert,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file),
            private_key=_read(self.key_file),
            certificate_chain=_read(self.cert_file),
        )

    def channel_options(self) -> list[tuple[str, str]]:
        if not self.server_name:
            return []
        return [("grpc.ssl_target_name_override", self.server_name)]


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()
