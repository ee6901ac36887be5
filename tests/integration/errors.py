"""Assertions on failed gRPC calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest


def expect_status(call: Callable[[], Any], code: grpc.StatusCode, *in_message: str) -> str:
    """Run a call that must fail with ``code``; its message must name each of ``in_message``."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert isinstance(error, grpc.Call)
    assert error.code() == code, error.details()
    details = error.details() or ""
    for part in in_message:
        assert part in details, details
    return details
