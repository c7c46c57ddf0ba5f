"""The id alphabet every id of the API is written in: teams, agents, schemes, raters, keys."""

from __future__ import annotations

import re

#: Ids in URLs, bodies, query strings, JWT subjects and event streams; written once here.
_ID_CHARACTER = r"[A-Za-z0-9._:-]"
#: The longest id (storage that holds ids may rely on it: service/store/metrics.py STAGE).
ID_MAX = 64
ID_PATTERN = rf"^{_ID_CHARACTER}{{1,{ID_MAX}}}$"
#: An id made of ids joined by ':' (a reassignment review's `{team_id}:{period}:{agent_id}`).
COMPOUND_ID_PATTERN = rf"^{_ID_CHARACTER}{{1,200}}$"
ID_RE = re.compile(ID_PATTERN)
ID_RULE = f"1 to {ID_MAX} letters, digits, '.', '_', ':' or '-'"
