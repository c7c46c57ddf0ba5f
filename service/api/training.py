"""Evaluator training records: recorded by admins (HR), read by managers and the evaluator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response

from service.api.auth import allow
from service.api.deps import caller, service_context
from service.api.params import IdPath
from service.api.problems import Problem
from service.api.routing import Router
from service.api.schemas import TrainingIn, TrainingOut
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import training as commands
from service.context import ServiceContext
from service.domain import training as t
from service.domain.principal import Principal
from service.queries import training as reads

router = Router(prefix="/v1/training", tags=["training"])

TRAINING_COLUMNS = ("evaluator_id", "topic", "title", "status", "completed_at", "valid_until",
                    "recorded_by", "recorded_at")


def training_document(training: t.Training, ctx: ServiceContext) -> dict[str, Any]:
    """Render an evaluator's records, each topic with its status now."""
    now = ctx.clock()
    topics = []
    for topic in t.TOPICS:
        record = training.records.get(topic)
        topics.append({
            "topic": topic, "title": t.TOPIC_TITLES[topic],
            "status": t.topic_status(record, now),
            "completed_at": record.completed_at if record else None,
            "valid_until": record.valid_until if record else None,
            "recorded_by": record.recorded_by if record else None,
            "recorded_at": record.recorded_at if record else None,
        })
    return {"evaluator_id": training.evaluator_id, "topics": topics,
            "history": [e.model_dump(mode="json", exclude={"type"}) for e in training.history]}


@router.put("/{evaluator_id}/{topic}", response_model=TrainingOut)
async def record_training(
    evaluator_id: IdPath, topic: str, body: TrainingIn, request: Request,
    principal: Annotated[Principal, allow()],
) -> dict[str, Any]:
    """Record that an evaluator completed training on a topic (admin): ethics, tools,
    criteria or policy."""
    ctx = service_context(request)
    training = await commands.record(
        ctx, caller(principal, request), evaluator_id, topic,
        completed_at=body.completed_at, valid_until=body.valid_until,
        recorded_by=principal.subject,
    )
    return training_document(training, ctx)


@router.get("/{evaluator_id}", response_model=TrainingOut, responses=CSV_ANSWER)
async def get_training(
    evaluator_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent", "rater")],
) -> dict[str, Any] | Response:
    """Return an evaluator's training per topic (or CSV): managers see anyone's, others
    their own."""
    ctx = service_context(request)
    if principal.role in ("agent", "rater") and principal.subject != evaluator_id:
        raise Problem(403, "an evaluator may only read their own training",
                      kind="out-of-scope")
    document = training_document(await reads.find_training(ctx, evaluator_id), ctx)
    if wants_table(request):
        return table_response(request, ({"evaluator_id": evaluator_id, **topic}
                             for topic in document["topics"]),
                            TRAINING_COLUMNS, f"training-{evaluator_id}")
    return document
