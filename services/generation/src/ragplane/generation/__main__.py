"""python -m ragplane.generation"""

from ragplane.generation.config import GenerationSettings
from ragplane.generation.server import GenerationApplication
from ragplane.runtime.server import run_service
from ragplane.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(GenerationSettings)
    run_service("generation", GenerationApplication(settings), settings)


if __name__ == "__main__":
    main()
