"""Reminder delivery settings, read from CSPERF_MAIL_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MailSettings(BaseSettings):
    """How the reminder sender gathers digests, retries and waits for the mail server."""

    model_config = SettingsConfigDict(env_prefix="CSPERF_MAIL_", extra="ignore")

    run_sender: bool = Field(
        default=True, description="Send reminders from this process (when CSPERF_SMTP_URL is"
        " set).")
    digest_hold_seconds: float = Field(
        default=300.0, ge=0, description="A digest waits until its oldest reminder is this old,"
        " so that a burst (a publication, a scheduler pass) goes out as one email.")
    retry_base_seconds: float = Field(
        default=30.0, gt=0, description="Wait after the first failure; doubled after each next.")
    retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest wait between two attempts.")
    max_attempts: int = Field(
        default=16, ge=1, le=100,
        description="Attempts before an email is given up as failed (16: about 11 hours).")
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long the mail server may take to answer.")
    concurrency: int = Field(
        default=4, ge=1, le=50, description="Emails handed to the server at once (one SMTP"
        " connection each).")
    batch: int = Field(default=50, ge=1, le=1000, description="Emails claimed at once.")
    lease_seconds: float = Field(
        default=120.0, gt=0,
        description="A claimed email that no result reaches in this time is claimed again.")
    poll_seconds: float = Field(
        default=5.0, gt=0, description="Longest idle wait between two looks for due work.")
