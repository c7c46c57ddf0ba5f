"""Schemes: the built-in default, forms, position overrides and validation."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from service.domain.kpis import TeamTarget
from service.domain.problems import Problem
from service.domain.scheme import (
    DEFAULT_SCHEME,
    KpiOverride,
    Scheme,
    check_evaluation,
    effective_kpis,
    team_target_problems,
    validate_scheme,
    with_team_targets,
)


def _dump() -> dict[str, Any]:
    return DEFAULT_SCHEME.model_dump(mode="json")


def _fields(problems: list[Problem]) -> set[str]:
    return {p.field for p in problems}


MANAGER_SCORES = {
    "work_ability": 70.0,
    "cooperation": 80.0,
    "service": 90.0,
    "report_timeliness": 80.0,
    "report_reliability": 60.0,
    "report_quality": 100.0,
}


# --- the default scheme ---------------------------------------------------------------------


def test_default_scheme_validates_clean() -> None:
    assert validate_scheme(DEFAULT_SCHEME) == []


def test_default_scheme_is_the_seed_composite() -> None:
    # composite = 0.30 self + 0.70 manager; manager = 0.25 each of four criteria
    assert DEFAULT_SCHEME.scheme_id == "online-shop-cs"
    assert DEFAULT_SCHEME.version == 1
    weights = {r.role: r.weight for r in DEFAULT_SCHEME.roles}
    assert weights == {
        "self": 0.30,
        "manager": 0.70,
        "peer": 0.0,
        "subordinate": 0.0,
        "customer": 0.0,
        "expert": 0.0,
    }
    manager = DEFAULT_SCHEME.role("manager")
    assert manager is not None
    assert {(c.name, c.weight, c.source) for c in manager.criteria} == {
        ("work_performance", 0.25, "kpi_attainment"),
        ("work_ability", 0.25, "rated"),
        ("cooperation", 0.25, "rated"),
        ("service", 0.25, "rated"),
    }
    self_role = DEFAULT_SCHEME.role("self")
    assert self_role is not None
    assert [(c.name, c.weight) for c in self_role.criteria] == [("task_completion", 1.0)]


def test_default_kpis_match_the_documented_table() -> None:
    table = {
        k.name: (k.kind, k.direction, k.target, k.floor, k.weight) for k in DEFAULT_SCHEME.kpis
    }
    assert table == {
        "conversion_rate": ("measured", "higher", 0.30, 0.05, 0.15),
        "avg_response_time_seconds": ("measured", "lower", 30.0, 180.0, 0.10),
        "churn_rate": ("measured", "lower", 0.05, 0.30, 0.10),
        "order_amount": ("measured", "higher", 50000.0, 0.0, 0.15),
        "valid_order_ratio": ("measured", "higher", 0.95, 0.70, 0.05),
        "payment_ratio": ("measured", "higher", 0.90, 0.50, 0.05),
        "refund_ratio": ("measured", "lower", 0.05, 0.30, 0.05),
        "avg_order_value": ("measured", "higher", 300.0, 50.0, 0.05),
        "report_timeliness": ("rated", "higher", None, None, 0.10),
        "report_reliability": ("rated", "higher", None, None, 0.10),
        "report_quality": ("rated", "higher", None, None, 0.10),
    }


def test_default_results_policy_is_the_seed() -> None:
    policy = DEFAULT_SCHEME.results
    assert (policy.reward_amount, policy.deduction_amount) == (100.0, 100.0)
    assert (policy.min_ranked_agents, policy.plan_deadline_days, policy.streak_length) == (3, 7, 3)


def test_scheme_survives_a_json_round_trip() -> None:
    assert Scheme.model_validate_json(DEFAULT_SCHEME.model_dump_json()) == DEFAULT_SCHEME


def test_a_misspelt_field_is_rejected_not_dropped() -> None:
    body = _dump() | {"rolez": []}
    with pytest.raises(pydantic.ValidationError):
        Scheme.model_validate(body)


# --- forms and evaluations ------------------------------------------------------------------


def test_forms_of_the_default_scheme() -> None:
    assert DEFAULT_SCHEME.form("self") == {"task_completion"}
    # work_performance is computed from KPIs, so it is not on the form; the rated KPIs are
    assert DEFAULT_SCHEME.form("manager") == set(MANAGER_SCORES)
    assert DEFAULT_SCHEME.form("peer") == {"collaboration"}
    assert DEFAULT_SCHEME.form("janitor") == frozenset()


def test_the_manager_form_is_the_agents_positions() -> None:
    # Given a position that drops a rated KPI (weight 0) and adds one of its own
    scheme = DEFAULT_SCHEME.model_copy(update={"position_overrides": {"security": {
        "report_quality": KpiOverride(weight=0.0),
        "report_timeliness": KpiOverride(weight=0.05),
        "door_checks": KpiOverride(kind="rated", weight=0.05, label="Door checks"),
    }}})
    security = scheme.form("manager", "security")
    # Then its form asks for the added one and not for the dropped one
    assert "report_quality" not in security and "door_checks" in security
    assert security == set(MANAGER_SCORES) - {"report_quality"} | {"door_checks"}
    # and the other positions keep the scheme's form
    assert scheme.form("manager", "pre-sale") == set(MANAGER_SCORES)
    assert scheme.form("manager") == set(MANAGER_SCORES)
    # An evaluation of a security agent without the dropped KPI is complete (one with it is
    # tolerated); one missing the added KPI is not.
    complete = {k: v for k, v in MANAGER_SCORES.items() if k != "report_quality"}
    assert check_evaluation(scheme, "manager", complete | {"door_checks": 70.0},
                            position="security") == []
    assert check_evaluation(scheme, "manager", MANAGER_SCORES | {"door_checks": 70.0},
                            position="security") == []
    assert _fields(check_evaluation(scheme, "manager", complete, position="security")) == {
        "scores.door_checks"}
    assert _fields(check_evaluation(scheme, "manager", MANAGER_SCORES)) == set()
    assert _fields(check_evaluation(scheme, "manager", MANAGER_SCORES | {"door_checks": 1.0})
                   ) == {"scores.door_checks"}


def test_a_complete_manager_evaluation_is_accepted() -> None:
    assert check_evaluation(DEFAULT_SCHEME, "manager", MANAGER_SCORES) == []


def test_an_evaluation_lists_every_missing_and_unknown_criterion() -> None:
    # Given a manager evaluation without cooperation and service, plus a made-up criterion
    scores = {k: v for k, v in MANAGER_SCORES.items() if k not in {"cooperation", "service"}}
    scores["charisma"] = 50.0
    # When it is checked
    problems = check_evaluation(DEFAULT_SCHEME, "manager", scores)
    # Then each one is named
    assert _fields(problems) == {"scores.cooperation", "scores.service", "scores.charisma"}
    assert len(problems) == 3


def test_overriding_work_performance_needs_a_written_reason() -> None:
    scores = MANAGER_SCORES | {"work_performance": 40.0}
    # Without a reason (or with a blank one) it is refused
    for reason in (None, "   "):
        problems = check_evaluation(DEFAULT_SCHEME, "manager", scores, override_reason=reason)
        assert _fields(problems) == {"scores.work_performance"}
        assert "reason" in problems[0].reason
    # With a reason it is accepted
    reason = "chat widget lost a week of data"
    assert check_evaluation(DEFAULT_SCHEME, "manager", scores, override_reason=reason) == []


def test_only_the_owner_of_work_performance_may_override_it() -> None:
    problems = check_evaluation(
        DEFAULT_SCHEME,
        "self",
        {"task_completion": 90.0, "work_performance": 100.0},
        override_reason="I did great",
    )
    assert _fields(problems) == {"scores.work_performance"}


def test_scores_must_lie_on_the_scale() -> None:
    scores = MANAGER_SCORES | {"service": 101.0, "cooperation": -1.0, "work_ability": float("nan")}
    problems = check_evaluation(DEFAULT_SCHEME, "manager", scores)
    assert _fields(problems) == {"scores.service", "scores.cooperation", "scores.work_ability"}


def test_an_unknown_rater_role_is_refused() -> None:
    problems = check_evaluation(DEFAULT_SCHEME, "auditor", {"x": 1.0})
    assert _fields(problems) == {"rater_role"}


# --- position overrides ---------------------------------------------------------------------


def test_a_position_overrides_only_what_it_names() -> None:
    # Given pre-sale agents with a higher conversion target and more weight on it
    scheme = DEFAULT_SCHEME.model_copy(
        update={
            "position_overrides": {
                "pre-sale": {
                    "conversion_rate": KpiOverride(target=0.40, weight=0.25),
                    "order_amount": KpiOverride(weight=0.05),
                }
            }
        }
    )
    # When the KPIs for that position are taken
    kpis = {k.name: k for k in scheme.kpis_for("pre-sale")}
    # Then the named fields change and everything else is the scheme's
    assert (kpis["conversion_rate"].target, kpis["conversion_rate"].floor) == (0.40, 0.05)
    assert kpis["conversion_rate"].weight == 0.25
    assert (kpis["order_amount"].target, kpis["order_amount"].weight) == (50000.0, 0.05)
    assert scheme.kpis_for("after-sale") == list(DEFAULT_SCHEME.kpis)
    assert scheme.kpis_for(None) == list(DEFAULT_SCHEME.kpis)
    assert validate_scheme(scheme) == []


def test_a_position_override_must_keep_weights_and_bounds_sound() -> None:
    body = _dump()
    body["position_overrides"] = {
        "after-sale": {
            "churn_rate": {"target": 0.40},  # now on the wrong side of its floor (0.30)
            "conversion_rate": {"weight": 0.30},  # KPI weights now sum to 1.15
            "attendance": {"weight": 0.1},  # not a KPI of the scheme
            "report_quality": {"floor": 10.0},  # a rated KPI has no floor
        }
    }
    problems = validate_scheme(Scheme.model_validate(body))
    assert _fields(problems) == {
        "position_overrides.after-sale.churn_rate.target",
        "position_overrides.after-sale",
        "position_overrides.after-sale.attendance",
        "position_overrides.after-sale.report_quality.floor",
    }


# --- validation -----------------------------------------------------------------------------


def test_validation_reports_every_problem_at_once() -> None:
    # Given a scheme with many independent mistakes
    body = _dump()
    body["roles"][0]["weight"] = 0.2  # with the -0.1 below, role weights sum to 0.8
    body["roles"][1]["criteria"][1]["weight"] = 0.5  # manager criteria sum to 1.25
    body["roles"][2]["role"] = "auditor"  # unknown role
    body["roles"][3]["weight"] = -0.1  # negative weight
    body["kpis"][2]["target"] = 0.5  # churn_rate: lower is better, target above floor 0.30
    body["kpis"][0]["direction"] = "lower"  # conversion_rate is higher-is-better
    body["kpis"].append(dict(body["kpis"][4]))  # valid_order_ratio twice
    body["kpis"].append(body["kpis"][5] | {"name": "bad name"})  # not a usable KPI name
    body["results"]["deduction_amount"] = -100
    body["results"]["min_ranked_agents"] = 0
    body["requires_training"] = ["peer", "boss"]
    # When it is validated
    problems = validate_scheme(Scheme.model_validate(body))
    # Then each mistake is reported, by field path
    assert {
        "roles",
        "roles[1].criteria",
        "roles[2].role",
        "roles[3].weight",
        "kpis.churn_rate.target",
        "kpis.conversion_rate.direction",
        "kpis[11].name",
        "kpis[12].name",
        "kpis",
        "results.deduction_amount",
        "results.min_ranked_agents",
        "requires_training[1]",
    } <= _fields(problems)
    role_sum = next(p for p in problems if p.field == "roles")
    assert "0.8" in role_sum.reason


def test_measured_kpis_need_a_target_and_floor_on_the_right_side() -> None:
    body = _dump()
    body["kpis"][1]["target"] = None  # avg_response_time_seconds
    body["kpis"][3]["floor"] = 60000.0  # order_amount: floor above target (higher is better)
    body["kpis"][6]["target"] = body["kpis"][6]["floor"]  # refund_ratio: target == floor
    problems = validate_scheme(Scheme.model_validate(body))
    assert _fields(problems) == {
        "kpis.avg_response_time_seconds.target",
        "kpis.order_amount.target",
        "kpis.refund_ratio.target",
    }


def test_rated_kpis_have_no_bounds_and_measured_ones_need_a_formula() -> None:
    body = _dump()
    body["kpis"][8]["target"] = 90.0  # report_timeliness is rated
    body["kpis"][9]["kind"] = "measured"  # report_reliability: measured, but no formula
    body["kpis"][10]["formula"] = {"op": "sum", "of": "orders"}  # a rated KPI with a formula
    problems = validate_scheme(Scheme.model_validate(body))
    assert {"kpis.report_timeliness.target", "kpis.report_reliability.formula",
            "kpis.report_quality.formula"} <= _fields(problems)


def _attendance_kpi(**changes: Any) -> dict[str, Any]:
    return {"name": "attendance_rate", "kind": "measured", "direction": "higher",
            "target": 0.98, "floor": 0.80, "weight": 0.15, "unit": "ratio",
            "label": "Attendance rate",
            "formula": {"op": "ratio", "of": "days_present", "over": "days_scheduled"},
            **changes}


def test_a_new_kpi_over_declared_metrics_is_valid() -> None:
    body = _dump()
    body["metrics"] += [{"name": "days_present", "unit": "count", "aggregation": "sum"},
                        {"name": "days_scheduled", "unit": "count", "aggregation": "sum"}]
    body["kpis"][0] = _attendance_kpi()  # replaces conversion_rate (same weight)
    assert validate_scheme(Scheme.model_validate(body)) == []


def test_every_kpi_as_data_problem_is_listed_at_once() -> None:
    # Given a scheme with each of the issue's five mistakes
    body = _dump()
    body["metrics"].append({"name": "days_present", "unit": "count"})
    body["kpis"][0] = _attendance_kpi()  # days_scheduled is not declared
    body["kpis"][1] = body["kpis"][1] | {  # a ratio over itself
        "formula": {"op": "ratio", "of": "orders", "over": "orders"}}
    body["kpis"][2]["name"] = "service"  # clashes with the manager's criterion "service"
    body["kpis"][3]["floor"] = 60000.0  # order_amount: floor above its target
    body["kpis"][4]["weight"] = 0.5  # KPI weights no longer sum to 1
    problems = validate_scheme(Scheme.model_validate(body))
    # Then each is reported, naming the field
    fields = _fields(problems)
    assert {"kpis.attendance_rate.formula.over", "kpis.avg_response_time_seconds.formula.over",
            "roles[1].criteria[3].name", "kpis.order_amount.target", "kpis"} <= fields
    reasons = {p.field: p.reason for p in problems}
    assert "not a metric the scheme declares" in reasons["kpis.attendance_rate.formula.over"]
    assert "over itself" in reasons["kpis.avg_response_time_seconds.formula.over"]
    assert "clashes" in reasons["roles[1].criteria[3].name"]
    assert "sum to 1.45" in reasons["kpis"]


def test_an_averaged_metric_is_read_by_a_mean_only_and_only_sums_prorate() -> None:
    body = _dump()
    body["kpis"][1]["formula"] = {"op": "sum", "of": "response_time_seconds"}
    body["kpis"][0]["prorate"] = True  # conversion_rate is a ratio
    fields = _fields(validate_scheme(Scheme.model_validate(body)))
    assert {"kpis.avg_response_time_seconds.formula.of", "kpis.conversion_rate.prorate"} <= fields


def test_a_scheme_written_before_kpis_were_data_reads_as_the_built_in_formulas() -> None:
    # Given the shape of a scheme stored before issue 19: no metrics, no formulas
    body = _dump()
    del body["metrics"]
    for kpi in body["kpis"]:
        del kpi["formula"]
        del kpi["label"]
    scheme = Scheme.model_validate(body)
    # Then it declares the ten built-in metrics and computes the built-in formulas
    assert scheme.metrics == DEFAULT_SCHEME.metrics
    assert [k.formula for k in scheme.kpis] == [k.formula for k in DEFAULT_SCHEME.kpis]
    assert validate_scheme(scheme) == []


def test_a_position_adds_drops_and_retargets_kpis() -> None:
    body = _dump()
    body["metrics"] += [{"name": "days_present", "unit": "count"},
                        {"name": "days_scheduled", "unit": "count"}]
    zero = {k["name"]: {"weight": 0.0} for k in body["kpis"]}
    added = {k: v for k, v in _attendance_kpi(weight=1.0).items() if k != "name"}
    body["position_overrides"] = {
        # security desk: attendance only, everything else dropped
        "security-desk": {**zero, "attendance_rate": added},
        # a position with no KPIs at all: only the rated criteria count
        "courier": zero,
    }
    scheme = Scheme.model_validate(body)
    assert validate_scheme(scheme) == []
    desk = {k.name: k for k in scheme.kpis_for("security-desk")}
    assert desk["attendance_rate"].weight == 1.0
    assert desk["attendance_rate"].formula is not None
    assert sum(k.weight for k in desk.values()) == 1.0
    assert all(k.weight == 0 for k in scheme.kpis_for("courier"))
    assert "attendance_rate" in scheme.kpi_names()
    # an added KPI that is incomplete is named
    body["position_overrides"]["security-desk"]["attendance_rate"] = {"kind": "measured",
                                                                      "weight": 1.0}
    fields = _fields(validate_scheme(Scheme.model_validate(body)))
    assert "position_overrides.security-desk.attendance_rate.formula" in fields


def test_duplicates_and_clashes_are_refused() -> None:
    body = _dump()
    body["roles"].append(dict(body["roles"][2]))  # peer twice
    body["roles"][1]["criteria"][2]["name"] = "work_ability"  # manager criterion twice
    body["roles"][0]["criteria"][0]["name"] = "report_quality"  # clashes with a rated KPI
    body["roles"][0]["criteria"].append(
        {"name": "own_kpis", "weight": 0.0, "source": "kpi_attainment"}
    )  # a second criterion taking KPI attainment
    problems = validate_scheme(Scheme.model_validate(body))
    assert _fields(problems) == {
        "roles[6].role",
        "roles[1].criteria[2].name",
        "roles[0].criteria[0].name",
        "roles[0].criteria[1].source",
        "roles[1].criteria[0].source",
    }


def test_criteria_of_a_weightless_role_need_not_sum_to_one() -> None:
    # A role with weight 0 never enters the composite
    body = _dump()
    body["roles"][2]["criteria"][0]["weight"] = 0.5
    assert validate_scheme(Scheme.model_validate(body)) == []
    # but once it has weight, its criteria must sum to 1
    body["roles"][0]["weight"] = 0.2
    body["roles"][2]["weight"] = 0.1
    assert _fields(validate_scheme(Scheme.model_validate(body))) == {"roles[2].criteria"}


def test_weights_that_sum_to_one_up_to_rounding_are_accepted() -> None:
    body = _dump()
    body["roles"][0]["weight"] = 0.1
    body["roles"][1]["weight"] = 0.7
    body["roles"][2]["weight"] = 0.2
    # 0.1 + 0.7 + 0.2 is 0.9999999999999999 in floating point
    assert validate_scheme(Scheme.model_validate(body)) == []


def test_scheme_header_problems() -> None:
    body = _dump() | {"scheme_id": "has spaces", "version": 0, "name": " ", "scale_max": 0}
    problems = validate_scheme(Scheme.model_validate(body))
    assert _fields(problems) == {"scheme_id", "version", "name", "scale_max"}


def test_a_team_target_wins_over_the_position_s_and_says_so() -> None:
    body = _dump()
    body["position_overrides"] = {"vip": {"order_amount": {"target": 90000.0},
                                          "churn_rate": {"target": 0.02}}}
    scheme = Scheme.model_validate(body)
    team = {"order_amount": TeamTarget(target=6000.0)}
    kpis, sources = effective_kpis(scheme, "vip", team)
    by_name = {k.name: k for k in kpis}
    assert (by_name["order_amount"].target, by_name["order_amount"].floor) == (6000.0, 0.0)
    assert (sources["order_amount"], sources["churn_rate"], sources["refund_ratio"]) == (
        "team", "position", "scheme")
    # the targets agents are issued follow the same rule
    issued = {k.name: k for k in with_team_targets(scheme, team).kpis_for("vip")}
    assert issued["order_amount"].target == 6000.0 and issued["churn_rate"].target == 0.02
    assert team_target_problems(scheme, {"order_amount": TeamTarget(floor=70000.0)})
