"""Cases run and statuses seen per RPC in this session, printed at its end by conftest.py."""

from __future__ import annotations

from collections import Counter

STATUSES: dict[str, Counter[str]] = {}


def record(rpc: str, status: str) -> None:
    STATUSES.setdefault(rpc, Counter())[status] += 1


def table() -> list[str]:
    lines = [f"{'RPC':<18} {'cases':>6}  statuses"]
    for rpc, seen in sorted(STATUSES.items()):
        statuses = ", ".join(f"{code} {count}" for code, count in seen.most_common())
        lines.append(f"{rpc:<18} {sum(seen.values()):>6}  {statuses}")
    return lines
