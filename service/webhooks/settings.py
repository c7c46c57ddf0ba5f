"""Webhook settings, read from CSPERF_WEBHOOK_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """How the sender retries and how long it waits for receivers."""

    model_config = SettingsConfigDict(env_prefix="CSPERF_WEBHOOK_", extra="ignore")

    run_sender: bool = Field(default=True, description="Send deliveries from this process.")
    retry_base_seconds: float = Field(
        default=1.0, gt=0, description="Wait after the first failure; doubled after each next.")
    retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest wait between two attempts.")
    max_attempts: int = Field(
        default=16, ge=1, le=100,
        description="Attempts before a delivery is given up as failed (16: about 4 hours).")
    timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a receiver may take to answer.")
    concurrency: int = Field(default=10, ge=1, le=200, description="Parallel POSTs.")
    batch: int = Field(default=50, ge=1, le=1000, description="Deliveries claimed at once.")
    lease_seconds: float = Field(
        default=60.0, gt=0,
        description="A claimed delivery that no attempt result reaches in this time is"
                    " claimed again (its sender died).")
    poll_seconds: float = Field(
        default=1.0, gt=0, description="Longest idle wait between two looks for due work.")
