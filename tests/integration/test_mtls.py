"""Mutual TLS with certificates the test makes: without a valid client certificate a caller is
refused; with one it is served, by a plain stub and by ragplane's own channel."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragplane.cli.stack import Stack
from ragplane.runtime.channels import open_channel
from ragplane.runtime.tls import TlsSettings
from ragplane.v1 import generation_pb2, generation_pb2_grpc
from tests.integration.generation_chain import PASSAGES, QUESTION, chain_env, provider
from tests.integration.guarded import status_of
from tests.integration.services import RunningService, service_process


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class Authority:
    """A throwaway certificate authority writing PEM files into a folder."""

    def __init__(self, folder: Path, name: str) -> None:
        self._folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            self._builder(subject, subject, self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file = folder / f"{name}.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(
        subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def issue(self, name: str) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        alt_names = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        )
        cert = (
            self._builder(subject, self.cert.subject, key.public_key())
            .add_extension(alt_names, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        issued = Issued(self._folder / f"{name}.crt", self._folder / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued
    client: Issued
    rogue_client: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = Authority(folder, "ragplane-test-ca")
    rogue = Authority(folder, "rogue-ca")
    return Pki(ca, ca.issue("generation"), ca.issue("query"), rogue.issue("intruder"))


def _credentials(pki: Pki, client: Issued | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.cert_file.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


def _tls_serving(pki: Pki) -> Callable[[int], Callable[[], bool]]:
    def ready(port: int) -> Callable[[], bool]:
        def check() -> bool:
            credentials = _credentials(pki, pki.client)
            with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                except grpc.RpcError:
                    return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        return check

    return ready


@pytest.fixture(scope="module")
def mtls_generation(
    stack: Stack, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    env = chain_env(provider("local", stack.ports.llm))
    env.update(
        {
            "RAGPLANE_TLS_CERT_FILE": str(pki.server.cert),
            "RAGPLANE_TLS_KEY_FILE": str(pki.server.key),
            "RAGPLANE_TLS_CA_FILE": str(pki.ca.cert_file),
            "RAGPLANE_TLS_REQUIRE_CLIENT_CERT": "true",
        }
    )
    log_dir = tmp_path_factory.mktemp("mtls")
    with service_process("generation", env, log_dir, ready=_tls_serving(pki)) as service:
        yield service


REQUEST = generation_pb2.GenerateRequest(question=QUESTION, passages=PASSAGES, max_output_tokens=4)


def _generate(target: str, credentials: grpc.ChannelCredentials | None) -> str:
    channel = (
        grpc.secure_channel(target, credentials)
        if credentials is not None
        else grpc.insecure_channel(target)
    )
    with channel:
        reply = generation_pb2_grpc.GenerationServiceStub(channel).Generate(REQUEST, timeout=60)
    return reply.text


def test_a_client_with_a_certificate_from_the_ca_is_served(
    pki: Pki, mtls_generation: RunningService
) -> None:
    assert _generate(mtls_generation.target, _credentials(pki, pki.client)).strip()


@pytest.mark.parametrize("who", ["no certificate", "certificate from another CA", "plaintext"])
def test_a_client_without_a_valid_certificate_is_refused(
    pki: Pki, mtls_generation: RunningService, who: str
) -> None:
    credentials = {
        "no certificate": _credentials(pki, None),
        "certificate from another CA": _credentials(pki, pki.rogue_client),
        "plaintext": None,
    }[who]
    with pytest.raises(grpc.RpcError) as refused:
        _generate(mtls_generation.target, credentials)
    assert status_of(refused.value) == grpc.StatusCode.UNAVAILABLE


async def test_ragplane_channels_dial_mutual_tls_from_the_shared_settings(
    pki: Pki, mtls_generation: RunningService
) -> None:
    tls = TlsSettings(cert_file=pki.client.cert, key_file=pki.client.key, ca_file=pki.ca.cert_file)
    channel = open_channel(mtls_generation.target, tls=tls)
    try:
        reply = await generation_pb2_grpc.GenerationServiceStub(channel).Generate(
            REQUEST, timeout=60
        )
    finally:
        await channel.close()
    assert reply.text.strip()
