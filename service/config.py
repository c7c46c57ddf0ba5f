"""Settings read from CSPERF_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; the environment is the only source."""

    model_config = SettingsConfigDict(env_prefix="CSPERF_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; unset means an embedded server in data_dir.",
    )
    data_dir: Path = Path(".csperf")
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = Field(
        default=None, description="PEM public key; enables RS256 tokens when set."
    )
    jwt_audience: str | None = Field(
        default=None, description="When set, tokens must carry this 'aud' claim."
    )
    jwt_issuer: str | None = Field(
        default=None, description="When set, tokens must carry this 'iss' claim."
    )
    jwt_leeway_seconds: int = Field(
        default=30, description="Clock skew tolerated on a token's exp and nbf."
    )
    bootstrap_admin_key: SecretStr | None = None
    log_level: str = "INFO"
    db_pool_size: int = 20
    max_body_bytes: int = 8 * 1024 * 1024
    projection_poll_seconds: float = Field(
        default=0.05, description="Longest idle sleep of a projection runner between polls."
    )
    run_projections: bool = Field(
        default=True, description="Run projection runners in this process."
    )
    feed_quiet_minutes: int = Field(
        default=120, description="A KPI input silent this long is flagged on the cycle."
    )
    auth_failure_limit: int = Field(
        default=20, description="Failed authentications per client per minute before 429."
    )
    run_scheduler: bool = Field(
        default=True, description="Run the overdue-plan scheduler in this process (one replica"
        " scans at a time, by advisory lock)."
    )
    scheduler_interval_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between two scans for overdue improvement plans."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings, read once from the environment."""
    return Settings()
