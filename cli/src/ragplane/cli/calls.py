"""What every command that calls the query service shares: its address, the tenant, errors."""

from __future__ import annotations

import argparse
import sys

import grpc

from ragplane.cli.stack import Ports

DEFAULT_TENANT = "demo"


def target(args: argparse.Namespace) -> str:
    return args.target or f"127.0.0.1:{Ports.from_env().query}"


def fail(error: grpc.RpcError) -> int:
    code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    print(f"error: {code}: {details}", file=sys.stderr)
    return 1
