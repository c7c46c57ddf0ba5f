"""The id alphabet every id of the API is written in: teams, agents, schemes, raters, keys."""

from __future__ import annotations

import re

#: Ids in URLs, bodies, query strings, JWT subjects and event streams; written once here.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
ID_RULE = "1 to 64 letters, digits, '.', '_', ':' or '-'"
