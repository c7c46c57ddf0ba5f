"""Settings read from CSPERF_* environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CSPERF_"
#: The shortest HS256 secret accepted: RFC 7518 section 3.2 wants a key of at least the
#: hash's size (256 bits) for HS256; a shorter one can be guessed offline from one token.
MIN_JWT_SECRET_BYTES = 32


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@lru_cache(maxsize=4)
def rsa_public_key(pem: str) -> RSAPublicKey:
    """Return the RSA public key of CSPERF_JWT_PUBLIC_KEY; raise ValueError if it is none."""
    # Environment variables often carry PEM newlines as the two characters "\n".
    try:
        key = load_pem_public_key(pem.replace("\\n", "\n").encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY----- ...)") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key (RS256 is the only public-key algorithm)")
    return key


class Settings(BaseSettings):
    """Every knob of the service; the environment is the only source."""

    # An empty value counts as unset (compose files write `CSPERF_JWT_SECRET: ${X:-}`), so
    # `CSPERF_JWT_SECRET=` never configures an empty secret.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_ignore_empty=True)

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; unset means an embedded server in data_dir.",
    )
    read_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL of a read replica (a streaming standby) for reads that"
        " tolerate a moment's lag (the quarantine listing); unset: every read goes to"
        " database_url. Reads of one's own writes (KPIs after a 200) never use it.",
    )
    data_dir: Path = Path(".csperf")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
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
        default=30, ge=0, description="Clock skew tolerated on a token's exp and nbf."
    )
    bootstrap_admin_key: SecretStr | None = None
    log_level: str = "INFO"
    db_pool_size: int = Field(default=20, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    projection_poll_seconds: float = Field(
        default=0.05, gt=0, description="Longest idle sleep of a projection runner between polls."
    )
    run_projections: bool = Field(
        default=True, description="Run projection runners in this process."
    )
    feed_quiet_minutes: int = Field(
        default=120, ge=1, description="A KPI input silent this long is flagged on the cycle."
    )
    auth_failure_limit: int = Field(
        default=20, ge=0, description="Failed authentications a minute, per client address and"
        " per presented credential, before failing ones are answered 429 (valid ones never are);"
        " 0 disables the limit."
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Comma-separated IPs and CIDR networks of the reverse proxies"
        " whose X-Forwarded-For and X-Forwarded-Proto are believed; empty trusts none."
    )
    run_scheduler: bool = Field(
        default=True, description="Run the overdue-plan scheduler in this process (one replica"
        " scans at a time, by advisory lock)."
    )
    scheduler_interval_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between two scans for overdue improvement plans."
    )

    smtp_url: SecretStr | None = Field(
        default=None, description="Where reminder emails go: smtp://user:pass@host:587"
        "?starttls=true, smtps://user:pass@host:465 or smtp://host:25; unset, reminders are"
        " recorded (GET /v1/people/{id}/reminders) but not sent."
    )
    smtp_from: str = Field(
        default="csperf@localhost", description="The From address of reminder emails."
    )

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        from service.mail.smtp import parse_smtp_url  # the rule lives with the mail code

        if value is not None:
            parse_smtp_url(value.get_secret_value())  # its ValueError never quotes the URL
        return value

    @field_validator("smtp_from")
    @classmethod
    def _check_smtp_from(cls, value: str) -> str:
        if "@" not in value or any(c in value for c in "\r\n"):
            raise ValueError("an email address (reminders@example.com) on one line")
        return value.strip()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Written back in canonical form: uvicorn takes "10.0.0.1/8" (host bits set) for a
        # name, not a network, and would silently trust nobody.
        canonical = []
        for item in value:
            try:
                canonical.append(str(ipaddress.ip_network(item, strict=False)) if "/" in item
                                 else str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.5,172.16.0.0/12)"
                ) from None
        return tuple(canonical)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("jwt_public_key")
    @classmethod
    def _check_public_key(cls, value: str | None) -> str | None:
        if value is not None:
            rsa_public_key(value)
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _check_jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"an HS256 secret must be at least {MIN_JWT_SECRET_BYTES} bytes; generate one"
                " with: python -c \"import secrets; print(secrets.token_urlsafe(32))\""
            )
        return value

    @field_validator("bootstrap_admin_key")
    @classmethod
    def _check_bootstrap_key(cls, value: SecretStr | None) -> SecretStr | None:
        from service.store.keys import bootstrap_key_problem  # the rule lives with the keys

        if value is not None:
            problem = bootstrap_key_problem(value.get_secret_value())
            if problem is not None:
                raise ValueError(problem)
        return value


def settings_problems(error: ValidationError) -> list[str]:
    """Return one line per invalid setting: the variable and the rule, never its value."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        name = ENV_PREFIX + str(item["loc"][0]).upper() if item["loc"] else ENV_PREFIX + "*"
        reason = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"invalid setting {name}: {reason}")
    return lines


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings, read once from the environment."""
    return Settings()
