"""The service images under podman, run as the Helm chart runs them: a read-only root filesystem,
user 10001, tmpfs only where the chart mounts an emptyDir, on the host's network beside a local
stack. `make images` (scripts/build-images.sh) builds them; `make test` runs it first."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from tests.conftest import REPO

SERVICES = ("embedding", "retrieval", "generation", "query")
# The chart's emptyDir mounts (helm/ragplane/templates/deployment.yaml).
WRITABLE = {"embedding": ("/tmp", "/var/cache/ragplane")}
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "scripts" / "containers.conf")}
HEALTH_PROBE = REPO / ".bin" / "grpc_health_probe"


def missing_tool() -> str | None:
    """What the image tests cannot run without, if anything is missing."""
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make install-test installs it)"
    if not HEALTH_PROBE.exists():
        return f"{HEALTH_PROBE} is missing (make install-test builds it)"
    return None


def image(service: str) -> str:
    chart = (REPO / "helm" / "ragplane" / "Chart.yaml").read_text()
    version = re.search(r'^appVersion: "(.*)"$', chart, flags=re.MULTILINE)
    assert version is not None
    return f"localhost/ragplane/{service}:{version.group(1)}"


def podman(*args: str, timeout_s: float = 120) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=PODMAN_ENV, timeout=timeout_s
    )
    assert done.returncode == 0, f"podman {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def missing_images() -> list[str]:
    """The images `make images` builds (before the tests, in `make test`) that podman lacks."""
    return [
        image(service)
        for service in SERVICES
        if subprocess.run(["podman", "image", "exists", image(service)], env=PODMAN_ENV).returncode
    ]


def image_size(service: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image(service)))


def health(port: int) -> str:
    """What grpc_health_probe says of the server on port: "status: SERVING" when it serves."""
    done = subprocess.run(
        [str(HEALTH_PROBE), f"-addr=127.0.0.1:{port}", "-connect-timeout=1s", "-rpc-timeout=1s"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class Container:
    name: str

    @classmethod
    def start(cls, service: str, env: dict[str, str], name: str) -> Container:
        argv = ["run", "--detach", "--name", name, "--network", "host", "--user", "10001"]
        # Podman would add tmpfs at /tmp, /run and /var/tmp to a read-only container.
        argv += ["--read-only", "--read-only-tmpfs=false"]
        for path in WRITABLE.get(service, ("/tmp",)):
            argv += ["--tmpfs", path]
        for variable, value in env.items():
            argv += ["--env", f"{variable}={value}"]
        podman(*argv, image(service))
        return cls(name)

    def state(self) -> dict[str, Any]:
        """podman's description of the container (Config, HostConfig, State, ...)."""
        found: list[dict[str, Any]] = json.loads(podman("container", "inspect", self.name))
        return found[0]

    def running(self) -> bool:
        return bool(self.state()["State"]["Running"])

    def logs(self) -> str:
        return podman("logs", self.name)

    def wait_serving(self, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while health(port) != "status: SERVING":
            assert self.running(), f"{self.name} exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"{self.name} not SERVING:\n{self.logs()}"
            time.sleep(0.5)

    def remove(self) -> None:
        podman("rm", "--force", "--time", "10", self.name)
