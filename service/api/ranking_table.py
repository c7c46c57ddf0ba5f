"""A month's ranking as a download (CSV or Excel), for both doors: the API and the pages.

A frozen ranking is a stored document with a revision (a UUID) that names its content: a new
close, publication or correction stores a new revision. Its finished workbook is therefore
held by that revision (``ServiceContext.workbooks``) and never goes stale, so nothing needs to
drop it; a repeated download of a published month answers the held bytes. The first download,
and any open month's (no revision), writes the workbook (``service.api.tabular``).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from service.api.tabular import TableFormat, held_xlsx, table_answer
from service.context import ServiceContext
from service.queries import results
from service.queries.documents import Document


def ranking_table(
    ctx: ServiceContext, kind: TableFormat, document: Document | dict[str, Any]
) -> Response:
    """Answer a month's ranking as CSV or Excel (a frozen one's workbook written once)."""
    if not isinstance(document, Document):
        return table_answer(kind, results.ranking_rows(document), results.RANKING_COLUMNS,
                            results.ranking_filename(document))
    revision = document.revision
    if kind == "xlsx":
        held = ctx.workbooks.get(revision)
        if held is not None:
            return held_xlsx(held[1], held[0])
    body = orjson.loads(document.body)
    filename = results.ranking_filename(body)

    def keep(workbook: bytes) -> None:
        ctx.workbooks.put(revision, (filename, workbook))

    return table_answer(kind, results.ranking_rows(body), results.RANKING_COLUMNS, filename,
                        keep=keep)
