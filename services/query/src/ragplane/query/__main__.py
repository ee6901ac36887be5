"""python -m ragplane.query"""

from ragplane.query.config import QuerySettings
from ragplane.query.server import QueryApplication
from ragplane.runtime.server import run_service
from ragplane.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(QuerySettings)
    run_service("query", QueryApplication(settings), settings)


if __name__ == "__main__":
    main()
