"""python -m ragplane.retrieval"""

from ragplane.retrieval.config import RetrievalSettings
from ragplane.retrieval.server import RetrievalApplication
from ragplane.runtime.server import run_service
from ragplane.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(RetrievalSettings)
    run_service("retrieval", RetrievalApplication(settings), settings)


if __name__ == "__main__":
    main()
