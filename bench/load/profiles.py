"""Load profiles (bench/load/profiles/*.json) and the ghz command line each one becomes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class StepSchedule:
    """An open-loop rate rising from start_rps to end_rps by step_rps every step_duration_s."""

    start_rps: int
    step_rps: int
    end_rps: int
    step_duration_s: float

    @property
    def duration_s(self) -> float:
        steps = (self.end_rps - self.start_rps) // self.step_rps + 1
        return steps * self.step_duration_s


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    service: str
    call: str
    proto: str
    concurrency: int
    timeout_s: float
    data: Any
    duration_s: float
    schedule: StepSchedule | None
    # Questions asked once before the load, so that the load's repeats have answers to hit.
    warm_up: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Profile:
        raw: dict[str, Any] = json.loads(path.read_text())
        schedule = StepSchedule(**raw["schedule"]) if "schedule" in raw else None
        return cls(
            name=path.stem,
            description=raw["description"],
            service=raw["service"],
            call=raw["call"],
            proto=raw["proto"],
            concurrency=int(raw["concurrency"]),
            timeout_s=float(raw["timeout_s"]),
            data=raw["data"],
            duration_s=schedule.duration_s if schedule else float(raw["duration_s"]),
            schedule=schedule,
            warm_up=tuple(raw.get("warm_up", ())),
        )

    def ghz_argv(self, ghz: Path, protos: Path, target: str, report: Path) -> list[str]:
        argv = [
            str(ghz),
            "--insecure",
            f"--proto={protos / self.proto}",
            f"--import-paths={protos}",
            f"--call={self.call}",
            # An array is sent round-robin, one message per call.
            f"--data={json.dumps(self.data)}",
            f"--concurrency={self.concurrency}",
            f"--timeout={self.timeout_s:g}s",
            f"--duration={self.duration_s:g}s",
            # Calls in flight at the end are waited for and counted.
            "--duration-stop=wait",
            "--format=json",
            f"--output={report}",
        ]
        if self.schedule is not None:
            argv += [
                "--load-schedule=step",
                f"--load-start={self.schedule.start_rps}",
                f"--load-step={self.schedule.step_rps}",
                f"--load-end={self.schedule.end_rps}",
                f"--load-step-duration={self.schedule.step_duration_s:g}s",
            ]
        return [*argv, target]


def all_profiles() -> list[Profile]:
    return [Profile.load(path) for path in sorted(PROFILES_DIR.glob("*.json"))]
