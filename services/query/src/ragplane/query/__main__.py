"""python -m ragplane.query"""

from ragplane.query.config import GuardSettings, QuerySettings
from ragplane.query.gateway import server_interceptors
from ragplane.query.server import QueryApplication
from ragplane.runtime.server import run_service
from ragplane.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(QuerySettings)
    guard_settings = load_settings(GuardSettings)
    run_service(
        "query",
        QueryApplication(settings, guard_settings),
        settings,
        interceptors=server_interceptors(guard_settings),
    )


if __name__ == "__main__":
    main()
