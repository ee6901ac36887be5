"""Generation service settings (environment variables prefixed GENERATION_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.settings import ServiceSettings


class GenerationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GENERATION_")

    port: int = Field(default=50054, ge=1, le=65535)
    # Name of the provider in responses and logs.
    provider_name: str = "local-smollm2"
    # Any OpenAI-compatible API: llama-cpp-python, vLLM, OpenAI, Groq, ...
    base_url: str = "http://127.0.0.1:8081/v1"
    api_key: SecretStr = SecretStr("unused-by-local-servers")
    model: str = "smollm2-135m-instruct"
    request_timeout_s: float = Field(default=120.0, gt=0)
    default_max_output_tokens: int = Field(default=256, ge=1)
    max_output_tokens_limit: int = Field(default=2048, ge=1)
    default_temperature: float = Field(default=0.2, ge=0, le=2)
    max_question_chars: int = Field(default=4_000, ge=1)
    max_passages: int = Field(default=50, ge=1)
    max_passage_chars: int = Field(default=8_000, ge=1)
