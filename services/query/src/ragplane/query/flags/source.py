"""The flags file, read at start-up and re-read whenever it changes, without a restart.

A Kubernetes ConfigMap mounted as a volume is updated in place (an atomic symlink swap), so
the file's content is hashed every ``poll_s``: a cheap read of a small file that notices every
kind of update. A file that does not parse or validate is refused with a log line naming the
key at fault, and the last good flags stay in force; at start-up it stops the service instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path

import structlog
import yaml
from pydantic import ValidationError

from ragplane.query.flags.model import FlagFile
from ragplane.query.flags.resolution import Resolved, resolve
from ragplane.query.metrics import FLAG_RELOADS

log = structlog.get_logger(__name__)


class FlagsFileError(ValueError):
    """The flags file cannot be used; the message names the key at fault."""


def parse_flags(text: str) -> FlagFile:
    """The flags in ``text`` (YAML, or JSON, which is YAML too); FlagsFileError when bad."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FlagsFileError(f"not valid YAML or JSON: {error}") from error
    try:
        return FlagFile.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(the whole file)"
        raise FlagsFileError(f"key {key}: {first['msg']}") from error


class FlagSource:
    """The flags in force; without a file, an empty flag set (every setting the service's)."""

    def __init__(self, path: Path | None, poll_s: float) -> None:
        self._path = path
        self._poll_s = poll_s
        self._digest = b""
        self._flags: FlagFile | None = None
        self._watching: asyncio.Task[None] | None = None
        if path is not None:
            # Validated already with the settings (config.FlagSettings).
            text = self._read(path)
            self._flags = parse_flags(text)
            self._digest = _digest(text)

    @property
    def flags(self) -> FlagFile | None:
        return self._flags

    def resolve(self, tenant: str, caller: str) -> Resolved | None:
        """The flags for one query; None without a flags file."""
        if self._flags is None:
            return None
        return resolve(self._flags, tenant, caller)

    def start(self) -> None:
        if self._path is not None:
            self._watching = asyncio.create_task(self._watch(self._path))

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching

    async def _watch(self, path: Path) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                text = await asyncio.to_thread(self._read, path)
            except FlagsFileError as error:
                log.warning("flags file unreadable: the last good flags stay", error=str(error))
                continue
            self.reload(text)

    def reload(self, text: str) -> None:
        """Apply ``text`` if it changed and is valid; otherwise keep the flags in force."""
        digest = _digest(text)
        if digest == self._digest:
            return
        self._digest = digest  # a refused file is refused once, not at every poll
        try:
            flags = parse_flags(text)
        except FlagsFileError as error:
            FLAG_RELOADS.labels("refused").inc()
            version = self._flags.version if self._flags else None
            log.error(
                "flags file refused: the last good flags stay", error=str(error), version=version
            )
            return
        FLAG_RELOADS.labels("applied").inc()
        log.info("flags applied", version=flags.version, tenants=sorted(flags.tenants))
        self._flags = flags

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise FlagsFileError(f"cannot read {path}: {error}") from error


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
