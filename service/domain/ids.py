"""The id alphabet every id of the API is written in: teams, agents, schemes, raters, keys."""

from __future__ import annotations

import re

#: Ids in URLs, bodies, query strings, JWT subjects and event streams; written once here.
_ID_CHARACTER = r"[A-Za-z0-9._:-]"
ID_PATTERN = rf"^{_ID_CHARACTER}{{1,64}}$"
#: An id made of ids joined by ':' (a reassignment review's `{team_id}:{period}:{agent_id}`).
COMPOUND_ID_PATTERN = rf"^{_ID_CHARACTER}{{1,200}}$"
ID_RE = re.compile(ID_PATTERN)
ID_RULE = "1 to 64 letters, digits, '.', '_', ':' or '-'"
