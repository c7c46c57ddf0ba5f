"""A recorded month scores the same before and after KPIs became data (issue 19).

``tests/fixtures/recorded_month.json`` is the close of a 40-agent month recorded on the code
before issue 19 (its KPI formulas were code; see ``tests/fixtures/record_month.py`` for how it
was recorded). Here the same inputs go through today's path: raw totals and observation counts,
the built-in scheme's formulas as data (``cycle.measure``), then the close. Every frozen number
must come out identical: KPI values, attainments, weights, statuses, composites, ranks, notes.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.domain import cycle as c
from service.domain.events import decode
from service.domain.presence import DateRange, Span
from service.domain.reports import scorecard, stored_scorecards
from service.domain.scheme import DEFAULT_SCHEME, DEFAULT_SCHEME_V2, Scheme
from service.domain.scoring import dump_performance
from tests.fixtures.record_month import CLOSED, OPENED, OVERRIDES, PERIOD, inputs

RECORDED = json.loads((Path(__file__).parent.parent / "fixtures" / "recorded_month.json")
                      .read_text())
#: Fields added since the recording; everything else must match exactly.
NEW_FIELDS = {"target_source"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in NEW_FIELDS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _scheme(base: Scheme) -> Scheme:
    return Scheme.model_validate(base.model_dump() | {"position_overrides": OVERRIDES})


def _close(base: Scheme, without: tuple[str, ...] = ()) -> c.CycleClosed:
    """Close the recorded month; ``without``: metrics that arrived for nobody."""
    scheme = _scheme(base)
    roster = []
    events: list[Any] = [c.CycleOpened(
        team_id="t", period=PERIOD, scheme_id=scheme.scheme_id, scheme_version=scheme.version,
        deadline=CLOSED, opened_at=OPENED)]
    for a in inputs():
        leave = a["leave"]
        roster.append(c.RosterEntry(
            agent_id=a["agent_id"], name=a["agent_id"], position=a["position"],
            totals={m: v for m, v in a["totals"].items() if m not in without},
            observations={"response_time_seconds": a["responses"]},
            span=Span(date.fromisoformat(a["hired_on"]) if a["hired_on"] else None),
            absences=[DateRange(date.fromisoformat(leave[0]),
                                date.fromisoformat(leave[1]))] if leave else []))
        events.append(c.EvaluationSubmitted(
            agent_id=a["agent_id"], rater_role="self", rater_id=a["agent_id"],
            scores={"task_completion": a["self"]}, revision=1, submitted_at=OPENED))
        events.append(c.EvaluationSubmitted(
            agent_id=a["agent_id"], rater_role="manager", rater_id="m", scores=a["manager"],
            revision=1, submitted_at=OPENED, training_on_record=True))
    state = c.evolve_all(None, events)
    [closed] = c.decide_close(state, scheme, c.measure(scheme, PERIOD, roster), force=True,
                              reason="recording", missing_policy="zero", now=CLOSED,
                              presence=c.Presence("t", None))
    assert isinstance(closed, c.CycleClosed)
    return closed


def _replay(base: Scheme) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in _close(base).results]


@pytest.mark.parametrize("scheme", [DEFAULT_SCHEME, DEFAULT_SCHEME_V2], ids=["v1", "v2"])
def test_the_recorded_month_scores_exactly_the_same(scheme: Scheme) -> None:
    recorded = RECORDED[str(scheme.version)]
    replayed = _strip(_replay(scheme))
    assert [r["agent_id"] for r in replayed] == [r["agent_id"] for r in recorded]
    for before, after in zip(recorded, replayed, strict=True):
        # field by field first, so a failure names the agent and the number
        assert after["kpis"] == before["kpis"], before["agent_id"]
        assert after["score"]["composite"] == before["score"]["composite"], before["agent_id"]
        assert (after["rank"], after["tied"]) == (before["rank"], before["tied"])
        assert after == before


def test_the_recording_covers_what_could_differ() -> None:
    # The month exercises no-data ratios, missing metrics, pro-rating and unavailable-free
    # scoring, so an equal replay means something.
    v2 = RECORDED["2"]
    statuses = {k["status"] for r in v2 if r["score"]["work_performance"]
                for k in r["score"]["work_performance"]["kpis"].values()}
    assert {"measured", "no_data"} <= statuses
    assert any(k is None for r in v2 for k in r["kpis"].values())
    assert any(k.get("prorated_by") for r in v2 if r["score"]["work_performance"]
               for k in r["score"]["work_performance"]["kpis"].values())
    assert len({r["rank"] for r in v2 if r["rank"]}) > 10


def test_a_close_event_stores_kpi_scores_compactly_and_reads_them_back_the_same() -> None:
    closed = _close(DEFAULT_SCHEME_V2)
    stored = json.loads(json.dumps(closed.data()))
    first = stored["results"][0]["score"]["work_performance"]["kpis"]
    # one list of field names, one list of values per field, under the month's KPI names
    assert set(first) == {"fields", "columns"} and "attainment" in first["fields"]
    performance = closed.results[0].score.work_performance
    assert performance is not None and stored["kpi_names"] == list(performance.kpis)
    assert [len(column) for column in first["columns"]] == [len(performance.kpis)] * len(
        first["fields"])
    assert decode("CycleClosed", 4, stored) == closed
    # a close stored with each agent's KPI values and totals whole (version 3), one stored
    # before the columns (version 2: one list of values per KPI by name) and one stored
    # before the compact form (each KPI score a dict) still read the same
    assert decode("CycleClosed", 3, _whole(stored)) == closed
    assert decode("CycleClosed", 2, _by_name(_whole(stored))) == closed
    full = closed.model_dump(mode="json", exclude={"type"})
    assert decode("CycleClosed", 1, json.loads(json.dumps(full))) == closed
    assert len(json.dumps(stored)) < 0.7 * len(json.dumps(full))
    assert len(json.dumps(stored)) < len(json.dumps(_whole(stored)))
    assert len(json.dumps(_whole(stored))) < len(json.dumps(_by_name(_whole(stored))))


def test_a_close_event_stores_each_kpi_value_and_total_once() -> None:
    # order amounts never arrive: under fair months order_amount is unavailable to the team,
    # and an agent's value of it (0) is not its score's (none): that value alone is stored
    closed = _close(DEFAULT_SCHEME_V2, without=("order_amount",))
    stored = json.loads(json.dumps(closed.data()))
    assert stored["kpi_value_names"] == list(closed.results[0].kpis)
    assert stored["total_names"] == sorted(closed.results[0].totals)
    for result, kept in zip(closed.results, stored["results"], strict=True):
        performance = result.score.work_performance
        assert performance is not None
        assert kept["kpis"] == {name: value for name, value in result.kpis.items()
                                if name not in performance.kpis
                                or performance.kpis[name].status == "unavailable"}
        # a list under the month's metric names when the agent has them all, else by name
        names = stored["total_names"]
        assert kept["totals"] == ([result.totals[m] for m in names]
                                  if set(result.totals) == set(names) else result.totals)
    assert {"order_amount": 0.0} in [kept["kpis"] for kept in stored["results"]]
    assert {type(kept["totals"]) for kept in stored["results"]} == {list, dict}
    decoded = decode("CycleClosed", 4, stored)
    assert decoded == closed
    assert isinstance(decoded, c.CycleClosed)
    for before, after in zip(closed.results, decoded.results, strict=True):
        assert (after.kpis, after.totals) == (before.kpis, before.totals)
        assert list(after.kpis) == list(before.kpis)


def test_a_close_event_names_the_kpi_values_and_totals_of_an_agent_whose_differ() -> None:
    closed = _close(DEFAULT_SCHEME_V2)
    results = list(closed.results)
    # one agent with its KPI values in another order and a metric fewer, one with a value
    # its scores do not hold and a metric more
    first, second = results[1], results[2]
    results[1] = first.model_copy(update={
        "kpis": dict(reversed(first.kpis.items())), "totals": dict(list(first.totals.items())[1:])})
    results[2] = second.model_copy(update={
        "kpis": {**second.kpis, "extra": 1.5}, "totals": {**second.totals, "extra": 2.0}})
    odd = closed.model_copy(update={"results": tuple(results)})
    stored = json.loads(json.dumps(odd.data()))
    kept = stored["results"]
    assert "kpi_value_names" not in kept[0] and isinstance(kept[0]["totals"], list)
    assert kept[1]["kpi_value_names"] == list(results[1].kpis)
    assert kept[1]["totals"] == results[1].totals and kept[2]["totals"] == results[2].totals
    assert kept[2]["kpis"] == {"extra": 1.5}
    decoded = decode("CycleClosed", 4, stored)
    assert decoded == odd
    assert isinstance(decoded, c.CycleClosed)
    assert list(decoded.results[1].kpis) == list(results[1].kpis)


def test_a_close_event_names_the_kpis_of_an_agent_whose_kpis_differ() -> None:
    closed = _close(DEFAULT_SCHEME_V2)
    performance = closed.results[1].score.work_performance
    assert performance is not None
    # one agent scored on fewer KPIs, in another order (another position's)
    fewer = performance.model_copy(update={"rows": dict(reversed(
        list(performance.rows.items())[1:]))})
    score = closed.results[1].score.model_copy(update={"work_performance": fewer})
    results = list(closed.results)
    results[1] = results[1].model_copy(update={"score": score})
    odd = closed.model_copy(update={"results": tuple(results)})
    stored = json.loads(json.dumps(odd.data()))
    kpis = [r["score"]["work_performance"]["kpis"] for r in stored["results"][:3]]
    assert "names" not in kpis[0] and "names" not in kpis[2]
    assert kpis[1]["names"] == list(fewer.rows)
    assert decode("CycleClosed", 4, stored) == odd


def _whole(stored: dict[str, Any]) -> dict[str, Any]:
    """Return a version 4 close as version 3 stored it: each agent's KPI values and totals
    whole, by name."""
    older = copy.deepcopy(stored)
    value_names, total_names = older.pop("kpi_value_names"), older.pop("total_names")
    usual = older["kpi_names"]
    for result in older["results"]:
        kpis = result["score"]["work_performance"]["kpis"]
        values = dict(zip(kpis.get("names", usual), kpis["columns"][kpis["fields"].index(
            "value")], strict=True))
        result["kpis"] = {name: result["kpis"].get(name, values.get(name))
                          for name in result.pop("kpi_value_names", value_names)}
        if isinstance(result["totals"], list):
            result["totals"] = dict(zip(total_names, result["totals"], strict=True))
    return older


def _by_name(stored: dict[str, Any]) -> dict[str, Any]:
    """Return a version 3 close as version 2 stored it: each agent's values by KPI name."""
    older = copy.deepcopy(stored)
    usual = older.pop("kpi_names")
    for result in older["results"]:
        kpis = result["score"]["work_performance"]["kpis"]
        if kpis is not None:
            names, columns = kpis.pop("names", usual), kpis.pop("columns")
            rows = zip(*columns, strict=True) if columns else [()] * len(names)
            kpis["rows"] = {name: list(row) for name, row in zip(names, rows, strict=True)}
    return older


def test_a_compact_close_stored_with_fewer_fields_reads_them_as_their_defaults() -> None:
    closed = _close(DEFAULT_SCHEME_V2)
    stored = json.loads(json.dumps(closed.data()))
    for result in stored["results"]:
        kpis = result["score"]["work_performance"]["kpis"]
        # as stored before target sources were recorded: the last field is not there
        assert kpis["fields"][-1] == "target_source"
        kpis["fields"] = kpis["fields"][:-1]
        kpis["columns"] = kpis["columns"][:-1]
    for older in (decode("CycleClosed", 4, stored),
                  decode("CycleClosed", 2, _by_name(_whole(stored)))):
        assert isinstance(older, c.CycleClosed)
        for before, after in zip(closed.results, older.results, strict=True):
            assert before.score.work_performance is not None
            assert after.score.work_performance is not None
            assert after.score.work_performance.kpis == {
                name: k._replace(target_source=None)
                for name, k in before.score.work_performance.kpis.items()}


@pytest.mark.parametrize("scheme", [DEFAULT_SCHEME, DEFAULT_SCHEME_V2], ids=["v1", "v2"])
def test_a_stored_scorecard_shows_each_kpi_as_the_close_froze_it(scheme: Scheme) -> None:
    # order amounts never arrive: under fair months the KPI order_amount is unavailable to the
    # team, and its card shows the agent's own value (a sum of nothing, 0) where the scoring
    # had none: the one case where the two differ
    closed = _close(scheme, without=("order_amount",))
    stored = stored_scorecards("t", PERIOD, "closed", closed.results, _scheme(scheme), {})
    for result, card in zip(closed.results, stored, strict=True):
        performance = result.score.work_performance
        assert performance is not None
        # each KPI is stored once: the document keeps no detail of its own
        assert "kpis" not in card.document["work_performance"]
        assert [entry[0] for entry in card.kpis] == list(performance.kpis)
        shown = scorecard(json.loads(json.dumps(card.document)), card.kpis)
        assert shown["work_performance"] == dump_performance(performance), result.agent_id
        for name, entry in shown["kpis"].items():
            frozen = performance.kpis[name]
            assert entry["value"] == (result.kpis.get(name) if frozen.kind == "measured"
                                      else frozen.value)
            assert (entry["target"], entry["attainment"], entry.get("prorated_by")) == (
                frozen.target, frozen.attainment, frozen.prorated_by)
    unavailable = [(r.kpis["order_amount"], r.score.work_performance.kpis["order_amount"].value)
                   for r in closed.results if r.score.work_performance
                   and r.score.work_performance.kpis["order_amount"].status == "unavailable"]
    assert bool(unavailable) == (scheme.version == 2)
    assert all(values == (0.0, None) for values in unavailable)


def test_a_close_whose_detail_the_card_cannot_rebuild_keeps_it_in_the_document() -> None:
    closed = _close(DEFAULT_SCHEME_V2)
    result = closed.results[0]
    performance = result.score.work_performance
    assert performance is not None
    # scored with a weight the scheme's KPI no longer has (as an older close could be)
    name = next(iter(performance.kpis))
    odd = performance.model_copy(update={"rows": {
        **performance.rows, name: tuple(performance.kpis[name]._replace(weight=0.5))}})
    result = result.model_copy(update={"score": result.score.model_copy(
        update={"work_performance": odd})})
    [card] = stored_scorecards("t", PERIOD, "closed", [result], _scheme(DEFAULT_SCHEME_V2), {})
    assert card.document["work_performance"]["kpis"][name]["weight"] == 0.5
    shown = scorecard(card.document, card.kpis)
    assert shown["work_performance"] == dump_performance(odd)


def test_a_kpi_its_close_did_not_score_is_shown_dropped_at_the_schemes_target() -> None:
    closed = _close(DEFAULT_SCHEME_V2)
    results = closed.results[:2]
    performance = results[0].score.work_performance
    assert performance is not None
    # the first agent's close has no score of one KPI (as an older close of a scheme that
    # added it since could have)
    name = next(n for n, row in performance.kpis.items() if row.kind == "measured")
    odd = performance.model_copy(update={"rows": {
        n: row for n, row in performance.rows.items() if n != name}})
    first = results[0].model_copy(update={"score": results[0].score.model_copy(
        update={"work_performance": odd})})
    scheme = _scheme(DEFAULT_SCHEME_V2)
    cards = stored_scorecards("t", PERIOD, "closed", [first, results[1]], scheme, {})
    kpi = next(k for k in scheme.kpis if k.name == name)
    entry = scorecard(cards[0].document, cards[0].kpis)["kpis"][name]
    assert (entry["value"], entry["target_source"], entry["target"], entry["floor"],
            entry["effective_weight"], entry["attainment"], entry["dropped"],
            entry["status"]) == (first.kpis.get(name), None, kpi.target, kpi.floor, None,
                                 None, True, None)
    # the card keeps its detail as scored, and the next card its own KPIs
    assert name not in cards[0].document["work_performance"]["kpis"]
    second = results[1].score.work_performance
    assert second is not None
    assert [e[0] for e in cards[1].kpis] == list(second.kpis)
