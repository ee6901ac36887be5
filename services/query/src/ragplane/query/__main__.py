"""python -m ragplane.query"""

from ragplane.query.access import access_interceptors
from ragplane.query.config import BatchSettings, FlagSettings, GuardSettings, QuerySettings
from ragplane.query.wiring import QueryApplication
from ragplane.runtime.server import run_service
from ragplane.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(QuerySettings)
    guard_settings = load_settings(GuardSettings)
    run_service(
        "query",
        QueryApplication(
            settings, guard_settings, load_settings(BatchSettings), load_settings(FlagSettings)
        ),
        settings,
        interceptors=access_interceptors(guard_settings),
    )


if __name__ == "__main__":
    main()
