"""python -m ragplane.embedding"""

from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.server import EmbeddingApplication
from ragplane.runtime.server import run_service
from ragplane.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(EmbeddingSettings)
    run_service("embedding", EmbeddingApplication(settings), settings)


if __name__ == "__main__":
    main()
