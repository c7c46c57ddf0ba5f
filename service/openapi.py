"""Render the OpenAPI document of the app as YAML."""

from __future__ import annotations

import yaml

from service.config import Settings


def render() -> str:
    """Return openapi.yaml's text, generated from the routes (no database needed)."""
    from service.main import create_app

    app = create_app(Settings(database_url=None))
    text: str = yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True)
    return text
