"""The ``reporting`` schema: stable, documented SQL views for BI tools, and their read-only role.

BI tools (Metabase, Superset, Power BI, spreadsheets) read these views and nothing else. Each
view and each of its columns carries a ``COMMENT`` that BI tools show as the description. The
views are a contract like the API's: names and columns are only ever added, never renamed or
dropped, and data types stay put.

Why at run time. The read models are tables that the projection runner creates per
generation (``ranking_entries__g3``) behind stable views in ``public`` (``ranking_entries``);
they do not exist until a projection has started, and a rebuild whose columns changed shape
drops its public view with CASCADE (``checkpoints._point_views``), taking the reporting views
over it along. So ``ensure_reporting`` (idempotent) runs at start-up and again whenever a
public view that a reporting view reads is created afresh, inside that same transaction, so
readers never see the reporting views missing. A view whose source does not exist yet (a read
model still to come) is skipped and created once it appears: that is the extension point for
new read models (add a ``View`` to ``VIEWS`` naming its ``requires``).

Views are owned by the service's database user and read the public views with its rights, so
the BI role (made by ``service/store/reporting_role.py``) needs ``SELECT`` on the reporting
views only: it has no rights on ``public``
(events, API keys, read-model tables) at all. ``information_schema`` lists only what a role
may use, so a BI tool browsing the database sees the reporting schema alone.

Each view's fingerprint (a hash of its SQL and comments) is kept in ``reporting_view_state``;
a view that exists with the current fingerprint is left alone, so a start-up does not lock
views that BI queries are reading.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from service.domain.calibration import DEVIATION_POINTS, GAP_POINTS, MIN_RATINGS
from service.domain.reports import KPI_SCORE
from service.domain.scheme import DEFAULT_SCHEME

log = logging.getLogger(__name__)

SCHEMA = "reporting"
#: The NOLOGIN group role whose members may read the reporting schema and nothing else.
GROUP_ROLE = "csperf_bi"
#: Bumped when views are added; shown in the schema's comment.
REPORTING_VERSION = 1
LOCK_NAMESPACE = 7215003
_LOCK_KEY = 1


def _literal(text: str) -> str:
    """Quote a constant of ours as an SQL string literal (comments take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class View:
    """A reporting view: its SELECT, its columns in order with their meaning, and its sources."""

    name: str
    comment: str
    columns: dict[str, str]
    select: str
    #: Public relations the view reads; it is created once all of them exist.
    requires: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        """Return a hash of everything the database stores about the view."""
        text = "\x1f".join([self.comment, self.select, *self.columns, *self.columns.values()])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def ddl(self) -> str:
        """Return the statements that (re)create the view and its comments."""
        # (Test: every column of every view has a comment, so a column missing from
        # ``columns`` shows up as an undocumented one.)
        columns = ", ".join(self.columns)
        parts = [
            f"CREATE OR REPLACE VIEW {SCHEMA}.{self.name} ({columns}) AS {self.select}",
            f"COMMENT ON VIEW {SCHEMA}.{self.name} IS {_literal(self.comment)}",
        ]
        parts += [
            f"COMMENT ON COLUMN {SCHEMA}.{self.name}.{c} IS {_literal(text)}"
            for c, text in self.columns.items()
        ]
        return ";\n".join(parts)


#: A stored card's KPIs, in the projection's ``scorecard_kpis`` (one row a card): an array each
#: of their definitions (``scorecard_kpi_definitions.kpi_def``) and of the agent's fields of
#: their entries (``service.domain.reports.KPI_SCORE``), in the card's order.
CARD_KPI_FIELDS: tuple[str, ...] = (
    "kpi_def", *(("kpi_status" if f == "status" else f) for f in KPI_SCORE))


def card_kpis(row: str, fields: Sequence[str] = CARD_KPI_FIELDS) -> str:
    """Return a FROM item of the KPIs of the ``scorecard_kpis`` row ``row``, one row a KPI
    named k, with these fields and its place on the card (n, from 1)."""
    return (f"unnest({', '.join(f'{row}.{f}' for f in fields)}) WITH ORDINALITY"
            f" AS k ({', '.join(fields)}, n)")


def _period_start(column: str) -> str:
    return f"to_date({column} || '-01', 'YYYY-MM-DD')"


PERIOD = "the month, YYYY-MM, in the team's time zone"
PERIOD_START = "the first day of the month (a date, for BI time axes)"
TEAM = "the team's id"
AGENT = "the agent's id"

# -- the built-in scheme's KPIs, for the wide views kept for the BI tools built on them ----------
# Every KPI of every scheme, built-in or not, is in long form in scorecard_kpis (closed months)
# and kpi_values (live). The wide views pick the built-in KPIs' columns out of kpi_values,
# whose values service/domain/live_kpis.py computed: no formula is written here.

#: The raw metrics and KPIs of the built-in scheme: the columns of the wide views.
METRICS: tuple[str, ...] = tuple(m.name for m in DEFAULT_SCHEME.metrics)
KPI_NAMES: tuple[str, ...] = tuple(k.name for k in DEFAULT_SCHEME.kpis)
#: The built-in measured KPIs with a column of their own (order_amount is a metric's too).
_WIDE_KPIS: tuple[str, ...] = tuple(k.name for k in DEFAULT_SCHEME.kpis
                                    if k.formula is not None and k.name not in METRICS)


def _kpi_meaning(name: str) -> str:
    kpi = DEFAULT_SCHEME.kpis_for(None)[KPI_NAMES.index(name)]
    assert kpi.formula is not None
    return (f"{kpi.title}: {kpi.formula.text()} by the scheme measuring the month (null: no"
            " data, or not computed yet: kpi_values follows ingestion by a second or so)")


def _kpi_history(group: Sequence[str], extra: dict[str, tuple[str, str]],
                 kpi_rows: str) -> tuple[str, dict[str, str]]:
    """Return the SELECT and column comments of a KPI history grouped by ``group``; its KPI
    columns come from the kpi_values rows ``kpi_rows`` selects (one per key and KPI)."""
    sums = ",\n".join(
        f"sum(total) FILTER (WHERE metric = {_literal(m)}) AS m_{m}"
        for m in METRICS
    )
    extras = "".join(f", {sql} AS x_{name}" for name, (sql, _) in extra.items())
    inner = (
        f"SELECT {', '.join(group)}, {sums},"
        " sum(observations) FILTER (WHERE metric = 'response_time_seconds') AS m_responses,"
        f" sum(observations) AS m_samples, max(updated_at) AS m_updated_at{extras}"
        f" FROM public.metric_totals GROUP BY {', '.join(group)}"
    )
    pivot = (
        f"SELECT {', '.join(group)}, "
        + ", ".join(f"max(value) FILTER (WHERE kpi = {_literal(k)}) AS k_{k}"
                    for k in _WIDE_KPIS)
        + f" FROM ({kpi_rows}) v GROUP BY {', '.join(group)}"
    )
    select = (
        f"SELECT {', '.join('t.' + g for g in group)}, {_period_start('t.period')}, "
        + "".join(f"t.x_{name}, " for name in extra)
        + ", ".join(f"coalesce(t.m_{m}, 0)::float8" for m in METRICS)
        + ", coalesce(t.m_responses, 0)::bigint, coalesce(t.m_samples, 0)::bigint, "
        + ", ".join(f"k.k_{k}" for k in _WIDE_KPIS)
        + f", t.m_updated_at FROM ({inner}) t LEFT JOIN ({pivot}) k ON "
        + " AND ".join(f"k.{g} = t.{g}" for g in group)
    )
    names = {"agent_id": AGENT, "team_id": TEAM, "period": PERIOD}
    columns = {g: names[g] for g in group}
    columns["period_start"] = PERIOD_START
    columns.update({name: meaning for name, (_, meaning) in extra.items()})
    columns.update({m: f"sum of the raw metric {m} (0 when none arrived)" for m in METRICS})
    columns["order_amount"] += "; also the KPI order_amount"
    columns["responses"] = "number of response_time_seconds observations"
    columns["samples"] = "number of samples counted"
    columns.update({k: _kpi_meaning(k) for k in _WIDE_KPIS})
    columns["updated_at"] = "when the last of these samples was counted"
    return select, columns


_AGENT_KPI_SELECT, _AGENT_KPI_COLUMNS = _kpi_history(
    ("agent_id", "period"),
    {"team_ids": ("string_agg(DISTINCT team_id, ',' ORDER BY team_id)",
                  "the teams the samples counted for, comma-separated (several after a"
                  " transfer)")},
    "SELECT agent_id, period, kpi, value FROM public.kpi_values WHERE agent_id <> ''",
)
_TEAM_KPI_SELECT, _TEAM_KPI_COLUMNS = _kpi_history(
    ("team_id", "period"),
    {"agents": ("count(DISTINCT agent_id)",
                "agents with samples counted for the team in the month")},
    "SELECT team_id, period, kpi, value FROM public.kpi_values WHERE agent_id = ''",
)

# -- scorecards ----------------------------------------------------------------------------------

_ROLES = ("self", "manager", "peer", "subordinate", "customer", "expert")
_CRITERIA = {
    "task_completion": ("self", "the agent's task completion (self-evaluation), 0..100"),
    "work_performance": ("manager", "work performance (KPI attainment, or the manager's"
                                    " override), 0..100"),
    "work_ability": ("manager", "work ability (manager), 0..100"),
    "cooperation": ("manager", "cooperation (manager), 0..100"),
    "service": ("manager", "service (manager), 0..100"),
}


def _num(path: str) -> str:
    return f"(s.document #>> '{{{path}}}')::float8"


_SCORECARD_PARTS: list[tuple[str, str, str]] = [
    ("team_id", "s.team_id", TEAM),
    ("period", "s.period", PERIOD),
    ("period_start", _period_start("s.period"), PERIOD_START),
    ("agent_id", "s.agent_id", AGENT),
    ("agent_name", "s.document ->> 'name'", "the agent's name at close"),
    ("position", "s.document ->> 'position'", "the agent's position (decides their KPI set)"),
    ("status", "s.status", "closed or published"),
    ("composite", _num("composite"), "the composite score, 0..100 (null: not scorable)"),
    ("rank", "(s.document ->> 'rank')::int", "the rank in the team (ties share a rank)"),
    ("tied", "(s.document ->> 'tied')::boolean", "whether the rank is shared"),
]
for _role in _ROLES:
    _SCORECARD_PARTS.append((f"{_role}_score", _num(f"components,{_role},score"),
                             f"the {_role} part's score, 0..100 (null: none)"))
    _SCORECARD_PARTS.append((f"{_role}_weight", _num(f"components,{_role},effective_weight"),
                             f"the {_role} part's weight in the composite after"
                             " re-normalisation"))
for _criterion, (_owner, _meaning) in _CRITERIA.items():
    _SCORECARD_PARTS.append((_criterion, _num(f"components,{_owner},criteria,{_criterion},score"),
                             _meaning))
_SCORECARD_PARTS += [
    ("work_performance_computed", _num("work_performance,computed"),
     "work performance as computed from the KPIs, before any override"),
    ("work_performance_overridden", "(s.document #>> '{work_performance,overridden}')::boolean",
     "whether the manager overrode work performance"),
    ("override_reason", "s.document #>> '{work_performance,override_reason}'",
     "the manager's written reason for an override"),
]
for _kpi in KPI_NAMES:
    _SCORECARD_PARTS.append((f"{_kpi}_value", f"k.{_kpi}_value",
                             f"{_kpi}: the month's value (null: no data)"))
    _SCORECARD_PARTS.append((f"{_kpi}_attainment", f"k.{_kpi}_attainment",
                             f"{_kpi}: attainment against target, 0..100 (null: dropped)"))
_SCORECARD_PARTS += [
    ("scheme_id", "s.document ->> 'scheme_id'", "the scheme the month was scored with"),
    ("scheme_version", "(s.document ->> 'scheme_version')::int", "its version"),
    ("formula_version", "s.document ->> 'formula_version'", "the scoring formula's version"),
    ("notes", "array_to_string(ARRAY(SELECT jsonb_array_elements_text("
              "coalesce(s.document -> 'notes', '[]'::jsonb))), ' | ')",
     "how the numbers were computed (dropped KPIs, re-normalised weights), ' | '-separated"),
    # Fair months (scheme version 2); null on months scored without presence.
    ("ranked", "(s.document #>> '{eligibility,ranked}')::boolean",
     "whether the agent was present enough to be ranked (null: a month without presence"
     " rules)"),
    ("active_days", "(s.document #>> '{eligibility,active_days}')::int",
     "the month's days inside the employment span and outside absences"),
    ("days", "(s.document #>> '{eligibility,days}')::int", "the month's calendar days"),
    ("not_ranked_reason", "s.document #>> '{eligibility,reason}'",
     "why the agent was not ranked (null: ranked)"),
]

# -- the views -----------------------------------------------------------------------------------

_LEDGER_STATUS = ("CASE WHEN s.status = 'due' AND s.due_at < now() THEN 'overdue'"
                  " ELSE s.status END")
_EFFECT = ("CASE WHEN s.kind = 'reward' THEN s.amount WHEN s.kind = 'deduction'"
           " THEN -s.amount END")

#: Whether the agent's entries of the month are final: the moment ``release.final_at`` computed
#: (stored by the releases projection) compared with the query's time; never stated here.
_FINAL = ("coalesce((SELECT f.final_at <= now() FROM public.result_final f"
          " WHERE f.team_id = s.team_id AND f.period = s.period AND f.agent_id = s.agent_id),"
          " false)")
FINAL_COLUMN = ("whether final: the agent's appeal window of the month passed unused, or their"
                " appeal was decided")

VIEWS: list[View] = [
    View(
        "teams",
        "Teams: one row per team.",
        {"team_id": TEAM, "name": "the team's name", "timezone": "IANA time zone that decides"
         " months and deadlines", "currency": "currency of rewards and deductions",
         "manager_ids": "the team's managers, comma-separated",
         "scheme_id": "the scoring scheme new cycles use", "updated_at": "last change"},
        "SELECT t.team_id, t.name, t.timezone, t.currency, array_to_string(t.manager_ids, ','),"
        " t.scheme_id, t.updated_at FROM public.teams t",
        ("teams",),
    ),
    View(
        "agents",
        "Agents: one row per agent, in their current team.",
        {"agent_id": AGENT, "name": "the agent's name", "team_id": "the current team",
         "team_name": "the current team's name", "position": "pre-sale, in-sale, after-sale..",
         "joined_at": "when the agent was registered", "updated_at": "last change",
         "hired_on": "first day of employment, in the team's time zone (null: not recorded,"
         " counted as employed throughout)",
         "left_on": "last day of employment (null: still employed)"},
        "SELECT a.agent_id, a.name, a.team_id, t.name, a.position, a.joined_at, a.updated_at,"
        " a.hired_on, a.left_on"
        " FROM public.agents a LEFT JOIN public.teams t ON t.team_id = a.team_id",
        ("agents", "teams"),
    ),
    View(
        "agent_absences",
        "Recorded absences that stand (cancelled ones are left out): one row per absence."
        " Active days, and so who is ranked, are counted from these and the employment span.",
        {"agent_id": AGENT, "absence_id": "the absence's id, the caller's own",
         "from_date": "first day away (inclusive, the team's time zone)",
         "to_date": "last day away (inclusive)", "kind": "leave, sick, training or other"},
        "SELECT b.agent_id, b.absence_id, b.from_date, b.to_date, b.kind"
        " FROM public.agent_absences b",
        ("agent_absences",),
    ),
    View(
        "agent_memberships",
        "Which team each agent belonged to when: one row per stretch (until null: current).",
        {"agent_id": AGENT, "team_id": TEAM, "since": "start of the membership",
         "until": "end of the membership (null: current)"},
        "SELECT m.agent_id, m.team_id, m.since, m.until FROM public.agent_memberships m",
        ("agent_memberships",),
    ),
    View(
        "cycles",
        "Monthly cycles: one row per team and month.",
        {"team_id": TEAM, "team_name": "the team's name", "period": PERIOD,
         "period_start": PERIOD_START, "status": "open, closed or published",
         "scheme_id": "the scheme the cycle is scored with",
         "scheme_version": "the scheme version pinned when the cycle opened",
         "deadline": "the evaluation deadline", "opened_at": "when it opened",
         "closed_at": "when it closed (null: open)", "published_at": "when the ranking was"
         " (last) published", "publications": "how many times it was published (corrections"
         " republish)", "forced": "whether it was closed with evaluations missing",
         "evaluations_submitted": "evaluations submitted so far"},
        "SELECT c.team_id, t.name, c.period, " + _period_start("c.period") + ", c.status,"
        " c.scheme_id, c.scheme_version, c.deadline, c.opened_at, c.closed_at, c.published_at,"
        " c.publications, c.forced, c.evaluations FROM public.cycles c"
        " LEFT JOIN public.teams t ON t.team_id = c.team_id",
        ("cycles", "teams"),
    ),
    View(
        "rankings",
        "Monthly rankings: one row per agent and closed month, best first (rank 1).",
        {"team_id": TEAM, "team_name": "the team's name", "period": PERIOD,
         "period_start": PERIOD_START, "agent_id": AGENT, "agent_name": "the agent's name",
         "rank": "standard competition rank (1, 2, 2, 4); null: not ranked",
         "tied": "whether the rank is shared",
         "place_from": "first of the places the agent occupies (ties share places)",
         "place_to": "last of the places the agent occupies",
         "score": "the composite score, 0..100",
         "ranked_agents": "how many agents of the team were ranked that month",
         "status": "closed or published", "published_at": "when the month was published"},
        "SELECT r.team_id, t.name, r.period, " + _period_start("r.period") + ", r.agent_id,"
        " r.name, r.rank, r.tied, r.place_from, r.place_to, r.score,"
        " count(r.rank) OVER (PARTITION BY r.team_id, r.period), r.status, c.published_at"
        " FROM public.ranking_entries r"
        " LEFT JOIN public.cycles c ON c.team_id = r.team_id AND c.period = r.period"
        " LEFT JOIN public.teams t ON t.team_id = r.team_id",
        ("ranking_entries", "cycles", "teams"),
    ),
    View(
        "scorecards",
        "Scorecards, flattened: one row per agent and closed month with the composite, each"
        " rater role's score and weight, the default scheme's criteria, and each KPI's value"
        " and attainment. Schemes with other criteria: see scorecard_criteria and"
        " scorecard_kpis.",
        {name: meaning for name, _, meaning in _SCORECARD_PARTS},
        "SELECT " + ", ".join(sql for _, sql, _ in _SCORECARD_PARTS) + " FROM public.scorecards s"
        # A scorecard's KPIs are stored once, in scorecard_kpis (one row of arrays a card),
        # what they say alike for a position's cards in scorecard_kpi_definitions.
        " LEFT JOIN LATERAL (SELECT "
        + ", ".join(f"max(k.{f}) FILTER (WHERE d.kpi = {_literal(n)}) AS {n}_{f}"
                    for n in KPI_NAMES for f in ("value", "attainment"))
        + " FROM public.scorecard_kpis x CROSS JOIN LATERAL "
        + card_kpis("x", ("kpi_def", "value", "attainment"))
        + " JOIN public.scorecard_kpi_definitions d"
        " ON d.kpi_def = k.kpi_def WHERE x.card = s.card) k ON true",
        ("scorecards", "scorecard_kpis", "scorecard_kpi_definitions"),
    ),
    View(
        "scorecard_kpis",
        "Each KPI of each scorecard: one row per agent, closed month and KPI, whatever KPIs"
        " the scheme declares (a new KPI appears here without a migration).",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "status": "closed or published", "kpi": "the KPI's name",
         "kind": "measured (from metrics) or rated (by the manager)", "unit": "its unit",
         "direction": "higher or lower is better", "value": "the month's value (null: no"
         " data)", "target": "the target", "floor": "the floor (attainment 0)",
         "weight": "the KPI's weight in work performance",
         "effective_weight": "its weight after KPIs without data dropped out",
         "attainment": "attainment, 0..100 (null: dropped)",
         "dropped": "whether the KPI had no data and dropped out",
         "kpi_status": "measured, no_data or unavailable (fair months; null before them)",
         "target_source": "where the target came from: scheme, position, team, goal or"
                          " prorated (null: rated, or scored before KPIs were data)",
         "label": "the KPI's label in its scheme",
         "formula": "the KPI's formula in words (null: rated)"},
        "SELECT s.team_id, s.period, " + _period_start("s.period") + ", s.agent_id, s.status,"
        " d.kpi, d.kind, d.unit, d.direction, k.value, k.target, k.floor, d.weight,"
        " k.effective_weight, k.attainment, k.dropped, k.kpi_status, k.target_source,"
        " d.label, d.formula FROM public.scorecards s JOIN public.scorecard_kpis x"
        " ON x.card = s.card CROSS JOIN LATERAL " + card_kpis("x")
        + " JOIN public.scorecard_kpi_definitions d ON d.kpi_def = k.kpi_def",
        ("scorecard_kpis", "scorecards", "scorecard_kpi_definitions"),
    ),
    View(
        "scorecard_criteria",
        "Each criterion of each scorecard: one row per agent, closed month, rater role and"
        " criterion, with the role's and the criterion's weights.",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "status": "closed or published", "rater_role": "self, manager, peer, subordinate,"
         " customer or expert", "role_weight": "the role's weight in the composite",
         "role_effective_weight": "the role's weight after re-normalisation",
         "role_score": "the role's score, 0..100", "role_status": "how the role was scored",
         "criterion": "the criterion's name", "weight": "its weight in the role",
         "effective_weight": "its weight after re-normalisation",
         "score": "its score, 0..100"},
        "SELECT s.team_id, s.period, " + _period_start("s.period") + ", s.agent_id, s.status,"
        " r.key, (r.value ->> 'weight')::float8, (r.value ->> 'effective_weight')::float8,"
        " (r.value ->> 'score')::float8, r.value ->> 'status', c.key,"
        " (c.value ->> 'weight')::float8, (c.value ->> 'effective_weight')::float8,"
        " (c.value ->> 'score')::float8"
        " FROM public.scorecards s"
        " CROSS JOIN LATERAL jsonb_each(coalesce(s.document -> 'components', '{}'::jsonb)) r"
        " CROSS JOIN LATERAL jsonb_each(coalesce(r.value -> 'criteria', '{}'::jsonb)) c",
        ("scorecards",),
    ),
    View(
        "evaluation_scores",
        "Evaluations as submitted (latest revision): one row per evaluation and criterion."
        " Peer raters are anonymous, as on the scorecard.",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "rater_role": "self, manager, peer, subordinate, customer or expert",
         "rater_id": "who rated ('anonymous' for peers)", "revision": "1, then +1 per"
         " revision", "submitted_at": "when this revision was submitted",
         "criterion": "the criterion rated", "score": "the score given, 0..100",
         "comment": "the rater's comment"},
        "SELECT e.team_id, e.period, " + _period_start("e.period") + ", e.agent_id,"
        " e.rater_role, CASE WHEN e.rater_role = 'peer' THEN 'anonymous' ELSE e.rater_id END,"
        " e.revision, e.submitted_at, sc.key, (sc.value #>> '{}')::float8,"
        " e.event ->> 'comment'"
        " FROM public.evaluations e CROSS JOIN LATERAL jsonb_each(e.scores) sc",
        ("evaluations",),
    ),
    View(
        "kpi_history",
        "Live KPIs per agent and month: the raw metric totals of every sample of the agent"
        " (whichever team it counted for) and the KPIs computed from them, as GET"
        " /v1/agents/{agent_id}/kpis shows them. Ratios are fractions; null means no data.",
        _AGENT_KPI_COLUMNS, _AGENT_KPI_SELECT, ("metric_totals", "kpi_values"),
    ),
    View(
        "team_kpi_history",
        "Live KPIs per team and month, from the samples of its agents while they were in the"
        " team.",
        _TEAM_KPI_COLUMNS, _TEAM_KPI_SELECT, ("metric_totals", "kpi_values"),
    ),
    View(
        "kpi_values",
        "Live KPIs in long form: one row per agent (or team), month and KPI, whatever KPIs"
        " the scheme measuring the month declares (a new KPI appears here without a"
        " migration), with the effective target and floor of the agent's position and team"
        " and the attainment they give (before pro-rating or goal disputes: see"
        " scorecard_kpis once the month closes). Computed by the service from the metric"
        " totals a second or so after they are counted.",
        {"team_id": "the team whose scheme, position and targets judged the row (an agent's"
                    " team when computed)",
         "agent_id": AGENT + " (null: the team as a whole, over its agents' samples)",
         "period": PERIOD, "period_start": PERIOD_START, "kpi": "the KPI's name",
         "value": "the month's value so far (null: no data)",
         "target": "the effective target", "floor": "the effective floor (attainment 0)",
         "attainment": "attainment against target, 0..100 (null: no data)",
         "target_source": "where the target came from: scheme, position or team",
         "unit": "the KPI's unit", "direction": "higher or lower is better",
         "label": "the KPI's label in its scheme", "formula": "the KPI's formula in words",
         "samples": "samples of the scheme's metrics counted",
         "updated_at": "when the last of these samples was counted"},
        "SELECT v.team_id, nullif(v.agent_id, ''), v.period, " + _period_start("v.period")
        + ", v.kpi, v.value, v.target, v.floor, v.attainment, v.target_source, v.unit,"
        " v.direction, v.label, v.formula, v.samples, v.updated_at FROM public.kpi_values v",
        ("kpi_values",),
    ),
    View(
        "metric_totals",
        "Raw metric totals: one row per team, agent, month and metric.",
        {"team_id": "the team the samples counted for", "agent_id": AGENT, "period": PERIOD,
         "period_start": PERIOD_START, "metric": "the raw metric",
         "total": "sum of the samples' values", "observations": "number of samples",
         "updated_at": "when the last sample was counted"},
        "SELECT m.team_id, m.agent_id, m.period, " + _period_start("m.period") + ", m.metric,"
        " m.total::float8, m.observations, m.updated_at FROM public.metric_totals m",
        ("metric_totals",),
    ),
    View(
        "metric_feeds",
        "When each source last sent each metric for each team (feed monitoring).",
        {"team_id": TEAM, "metric": "the raw metric", "source": "the sending system",
         "last_received_at": "when a sample last arrived",
         "last_occurred_at": "the latest time a sample was observed",
         "samples": "samples received in all"},
        "SELECT f.team_id, f.metric, f.source, f.last_received_at, f.last_occurred_at,"
        " f.samples FROM public.metric_arrivals f",
        ("metric_arrivals",),
    ),
    View(
        "sanctions",
        "The sanctions ledger: rewards, deductions, improvement plans and reassignment reviews"
        " decided by published rankings, and the reversals and cancellations of later"
        " publications. Entries are never edited: sum(effect) is what is owed.",
        {"id": "the entry's id", "team_id": TEAM, "period": PERIOD,
         "period_start": PERIOD_START, "agent_id": AGENT,
         "kind": "reward, deduction, improvement_plan or reassignment_review",
         "entry": "grant, reversal (of a reward or deduction) or cancellation",
         "publication": "the publication that wrote the entry (1, then +1 per republication)",
         "ordinal": "the entry's place in that publication's ledger",
         "amount": "rewards and deductions; a reversal is negative",
         "effect": "the change to the agent's pay: + rewards, - deductions (null otherwise)",
         "currency": "the amount's currency", "due_at": "an improvement plan's deadline",
         "status": "active, reversed, due, submitted, approved, rejected, overdue, open,"
         " reassign, retain or cancelled (a plan past its deadline reads overdue)",
         "reason": "why the entry exists", "rank": "the agent's rank that month",
         "place_from": "first place occupied", "place_to": "last place occupied",
         "months": "for a reassignment review: the months in last place, comma-separated",
         "reverses": "the entry a reversal or cancellation ends",
         "late": "a plan submitted after its deadline", "submitted_at": "plan submitted",
         "decided_at": "plan reviewed or review decided", "decided_by": "who decided",
         "note": "the decision's comment", "overdue_at": "when a plan was recorded overdue",
         "created_at": "when the entry was written", "updated_at": "last status change",
         "final": FINAL_COLUMN},
        "SELECT s.id, s.team_id, s.period, " + _period_start("s.period") + ", s.agent_id,"
        " s.kind, s.entry, s.publication, s.ordinal, s.amount, " + _EFFECT + ", s.currency,"
        " s.due_at, " + _LEDGER_STATUS + ", s.reason, s.rank, s.place_from, s.place_to,"
        " array_to_string(s.months, ','), s.reverses, s.late, s.submitted_at, s.decided_at,"
        " s.decided_by, s.note, s.overdue_at, s.created_at, s.updated_at, " + _FINAL
        + " FROM public.sanctions s",
        ("sanctions", "result_final"),
    ),
    View(
        "improvement_plans",
        "Improvement plans owed by the bottom two of published months: one row per plan.",
        {"id": "the plan's ledger id", "team_id": TEAM, "period": PERIOD,
         "period_start": PERIOD_START, "agent_id": AGENT,
         "publication": "the publication that called for it", "rank": "the agent's rank",
         "reason": "why the plan is owed", "due_at": "deadline (7 days after publication)",
         "status": "due, submitted, approved, rejected, overdue or cancelled",
         "late": "submitted after the deadline", "submitted_at": "last submission",
         "reviewed_at": "last review", "reviewed_by": "the reviewing manager",
         "review_comment": "the review's comment", "overdue_at": "when recorded overdue",
         "created_at": "when the plan was called for"},
        "SELECT s.id, s.team_id, s.period, " + _period_start("s.period") + ", s.agent_id,"
        " s.publication, s.rank, s.reason, s.due_at, " + _LEDGER_STATUS + ", s.late,"
        " s.submitted_at, s.decided_at, s.decided_by, s.note, s.overdue_at, s.created_at"
        " FROM public.sanctions s WHERE s.kind = 'improvement_plan' AND s.entry = 'grant'",
        ("sanctions",),
    ),
    View(
        "reassignment_reviews",
        "Reassignment reviews of agents last three months in a row: one row per review.",
        {"id": "the review's ledger id",
         "review_id": "the id for POST /v1/reassignment-reviews/{id}/decision",
         "team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "months": "the months in last place, comma-separated", "reason": "why",
         "status": "open, reassign, retain or cancelled", "decided_at": "when decided",
         "decided_by": "who decided", "note": "the decision's note",
         "created_at": "when the review was opened",
         "basis_changed": "decided, then a correction no longer held its streak: the decision"
                          " stands, to be looked at again",
         "basis_note": "why the basis changed, naming the correction"},
        "SELECT s.id, s.team_id || ':' || s.period || ':' || s.agent_id, s.team_id, s.period, "
        + _period_start("s.period") + ", s.agent_id, array_to_string(s.months, ','),"
        " s.reason, s.status, s.decided_at, s.decided_by, s.note, s.created_at,"
        " s.basis_changed, s.basis_note"
        " FROM public.sanctions s WHERE s.kind = 'reassignment_review' AND s.entry = 'grant'",
        ("sanctions",),
    ),
    View(
        "payroll",
        "Payroll lines: every reward and deduction (and reversal), as GET /v1/payroll lists"
        " them.",
        {"sanction_id": "the ledger entry", "team_id": TEAM, "period": PERIOD,
         "period_start": PERIOD_START, "agent_id": AGENT, "kind": "reward or deduction",
         "entry": "grant or reversal", "amount": "the amount (a reversal is negative)",
         "effect": "the change to pay: + rewards, - deductions", "currency": "currency",
         "publication": "the publication that wrote it", "rank": "the agent's rank",
         "reason": "why", "reverses": "the entry a reversal ends",
         "status": "active or reversed", "created_at": "when written", "final": FINAL_COLUMN},
        "SELECT s.id, s.team_id, s.period, " + _period_start("s.period") + ", s.agent_id,"
        " s.kind, s.entry, coalesce(s.amount, 0), coalesce(" + _EFFECT + ", 0), s.currency,"
        " s.publication, s.rank, s.reason, s.reverses, s.status, s.created_at, " + _FINAL
        + " FROM public.sanctions s WHERE s.kind IN ('reward', 'deduction')",
        ("sanctions", "result_final"),
    ),
    View(
        "payroll_totals",
        "What each agent is owed per month and currency: the sums of their payroll lines.",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "currency": "currency", "rewards": "sum of reward amounts",
         "deductions": "sum of deduction amounts", "net": "rewards - deductions"},
        "SELECT s.team_id, s.period, " + _period_start("s.period") + ", s.agent_id,"
        " s.currency,"
        " round(coalesce(sum(s.amount) FILTER (WHERE s.kind = 'reward'), 0)::numeric, 6)"
        "::float8,"
        " round(coalesce(sum(s.amount) FILTER (WHERE s.kind = 'deduction'), 0)::numeric, 6)"
        "::float8,"
        " round(coalesce(sum(" + _EFFECT + "), 0)::numeric, 6)::float8"
        " FROM public.sanctions s WHERE s.kind IN ('reward', 'deduction')"
        " GROUP BY s.team_id, s.period, s.agent_id, s.currency",
        ("sanctions",),
    ),
]


# -- issue 7's read models: the process around the numbers, and rater calibration ---------------

VIEWS += [
    View(
        "goal_acknowledgements",
        "Participative goal setting: how each agent answered their month's targets (an agent"
        " without a row has not answered yet).",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "status": "acknowledged, disputed, or pending (after a resolved dispute)",
         "acknowledged_at": "when the agent acknowledged", "disputed_at": "when disputed",
         "dispute_comment": "the agent's reasons", "resolved_at": "when the manager resolved"
         " the dispute", "decision": "the resolution", "adjustments": "targets adjusted by the"
         " resolution, as JSON", "updated_at": "last change"},
        "SELECT g.team_id, g.period, " + _period_start("g.period") + ", g.agent_id, g.status,"
        " g.acknowledged_at, g.disputed_at, g.dispute_comment, g.resolved_at, g.decision,"
        " g.adjustments::text, g.updated_at FROM public.goals g",
        ("goals",),
    ),
    View(
        "rater_invitations",
        "Raters invited to evaluate agents (peer raters appear as 'anonymous', as on the"
        " scorecard).",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START,
         "rater_id": "the invited rater ('anonymous' for peers)",
         "rater_role": "peer, subordinate, customer or expert", "agent_id": AGENT,
         "invited_by": "who invited", "invited_at": "when"},
        "SELECT i.team_id, i.period, " + _period_start("i.period") + ","
        " CASE WHEN i.rater_role = 'peer' THEN 'anonymous' ELSE i.rater_id END, i.rater_role,"
        " i.agent_id, i.invited_by, i.invited_at FROM public.rater_invitations i",
        ("rater_invitations",),
    ),
    View(
        "evaluator_training",
        "Evaluator training records: one row per evaluator and topic (the latest).",
        {"evaluator_id": "the evaluator", "topic": "the training topic",
         "completed_at": "when completed", "valid_until": "until when it counts",
         "valid_now": "whether it is valid at query time", "recorded_by": "who recorded it",
         "recorded_at": "when recorded"},
        "SELECT t.evaluator_id, t.topic, t.completed_at, t.valid_until, t.valid_until > now(),"
        " t.recorded_by, t.recorded_at FROM public.training_records t",
        ("training_records",),
    ),
    View(
        "feedback_interviews",
        "Feedback interviews: one row per agent and month (planned, held, acknowledged).",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "manager_id": "the interviewing manager", "starts_at": "planned start",
         "ends_at": "planned end", "place": "where", "participants": "who takes part,"
         " comma-separated", "status": "the interview's status",
         "outline_prepared": "whether an interview outline was prepared",
         "recorded_at": "when the outcome was recorded",
         "acknowledged_at": "when the agent acknowledged the record",
         "scheduled_at": "when it was planned"},
        "SELECT f.team_id, f.period, " + _period_start("f.period") + ", f.agent_id,"
        " f.manager_id, f.starts_at, f.ends_at, f.place, array_to_string(f.participants, ','),"
        " f.status, f.outline, f.recorded_at, f.acknowledged_at, f.scheduled_at"
        " FROM public.interviews f",
        ("interviews",),
    ),
    View(
        "evaluation_levels",
        "Each evaluation reduced to its level (the mean of its scores on 0..100, a manager's"
        " work_performance override left out): what rater calibration compares.",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "rater_role": "self, manager, peer, subordinate, customer or expert",
         "rater_id": "who rated ('anonymous' for peers)", "revision": "the revision",
         "submitted_at": "when submitted", "level": "the level, 0..100"},
        "SELECT l.team_id, l.period, " + _period_start("l.period") + ", l.agent_id,"
        " l.rater_role,"
        " CASE WHEN l.rater_role = 'peer' THEN 'anonymous' ELSE l.rater_id END, l.revision,"
        " l.submitted_at, l.level FROM public.evaluations l",
        ("evaluations",),
    ),
    View(
        "rater_calibration",
        "Rater calibration per team and month, as GET .../calibration computes it: each"
        " rater's levels against the other raters' (leave-one-out), flagged lenient or strict"
        f" beyond {DEVIATION_POINTS:g} points and one standard deviation, with at least"
        f" {MIN_RATINGS} evaluations on each side. Self-evaluations are not rater levels.",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START,
         "rater_id": "the rater", "rater_role": "the role they rated in",
         "evaluations": "their evaluations this month", "mean": "their mean level",
         "stddev": "its standard deviation (population)", "min": "lowest level",
         "max": "highest level", "baseline_evaluations": "the other raters' evaluations",
         "baseline": "the other raters' mean level",
         "deviation": "mean - baseline (null: too few evaluations to judge)",
         "flag": "lenient, strict, or null (within limits, or too few evaluations)",
         "reason": "why flagged or not, in words"},
        "SELECT r.team_id, r.period, " + _period_start("r.period") + ", r.rater_id,"
        " r.rater_role, r.evaluations, r.mean, r.stddev, r.min, r.max,"
        " r.baseline_evaluations, r.baseline, r.deviation, r.flag, r.reason"
        " FROM public.rater_calibration r",
        ("rater_calibration",),
    ),
    View(
        "self_manager_gaps",
        "Per agent and month: the self-evaluation's level against the manager's; a gap of"
        f" {GAP_POINTS:g} points or more is flagged for the feedback interview.",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "self_level": "the latest self-evaluation's level",
         "manager_level": "the latest manager evaluation's level",
         "gap": "self - manager (positive: the agent sees themselves higher)",
         "flagged": f"whether the gap is {GAP_POINTS:g} points or more either way"},
        "SELECT g.team_id, g.period, " + _period_start("g.period") + ", g.agent_id,"
        " g.self_level, g.manager_level, g.gap, g.flagged FROM public.self_manager_gaps g",
        ("self_manager_gaps",),
    ),
    View(
        "result_releases",
        "Feedback before results: one row per agent of a closed or published month, whether"
        " their own result has been released to them (results.release after_interview), how"
        " and when, and their appeal window. Under on_publication the publication released"
        " everyone (released_by_kind 'publication').",
        {"team_id": TEAM, "period": PERIOD, "period_start": PERIOD_START, "agent_id": AGENT,
         "ranked": "whether the agent is in the month's ranking",
         "release_due_at": "the latest release (null: released at publication)",
         "released": "whether the result has reached the agent",
         "released_by_kind": "interview, manager, automatic or publication",
         "released_by": "who released it (the manager or the interview's recorder)",
         "released_at": "when it was released",
         "appeal_until": "the end of the agent's appeal window",
         "not_ranked": "fair months: why the agent is not ranked"},
        "SELECT m.team_id, m.period, " + _period_start("m.period") + ", a.agent_id,"
        " a.agent_id = ANY(m.ranked), m.release_due_at,"
        " x.agent_id IS NOT NULL OR (m.status = 'published' AND m.release_due_at IS NULL),"
        " CASE WHEN x.agent_id IS NOT NULL THEN x.released_by_kind"
        "  WHEN m.status = 'published' AND m.release_due_at IS NULL THEN 'publication' END,"
        " x.released_by,"
        " CASE WHEN x.agent_id IS NOT NULL THEN x.released_at"
        "  WHEN m.release_due_at IS NULL THEN m.first_published_at END,"
        " x.appeal_until, x.not_ranked"
        " FROM public.result_months m CROSS JOIN LATERAL unnest(m.agents) AS a(agent_id)"
        " LEFT JOIN public.result_releases x ON x.team_id = m.team_id AND x.period = m.period"
        "  AND x.agent_id = a.agent_id",
        ("result_months", "result_releases"),
    ),
    View(
        "appeals",
        "Appeals of a month's result by agents, and their decisions.",
        {"appeal_id": "the appeal's id", "team_id": TEAM, "period": PERIOD,
         "period_start": PERIOD_START, "agent_id": AGENT + " (the appellant)",
         "status": "open, upheld or amended", "reason": "the agent's reason",
         "filed_at": "when filed", "appeal_until": "the end of the window it was filed in",
         "decision": "uphold or amend", "note": "the decider's note",
         "decided_by": "who decided", "decided_at": "when decided"},
        "SELECT p.appeal_id, p.team_id, p.period, " + _period_start("p.period") + ","
        " p.agent_id, p.status, p.reason, p.filed_at, p.appeal_until, p.decision, p.note,"
        " p.decided_by, p.decided_at FROM public.appeals p",
        ("appeals",),
    ),
]

async def lock(conn: asyncpg.Connection) -> None:
    """Take the transaction-scoped lock that serialises changes to views."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_NAMESPACE, _LOCK_KEY)


def relations_used() -> frozenset[str]:
    """Return the public relations some reporting view reads."""
    return frozenset(r for view in VIEWS for r in view.requires)


async def _public_relations(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')"
    )
    return {r["relname"] for r in rows}


async def _existing_views(conn: asyncpg.Connection) -> dict[str, str | None]:
    rows = await conn.fetch(
        "SELECT c.relname, s.fingerprint FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN reporting_view_state s ON s.name = c.relname"
        " WHERE n.nspname = $1 AND c.relkind = 'v'",
        SCHEMA,
    )
    return {r["relname"]: r["fingerprint"] for r in rows}


async def group_role_exists(conn: asyncpg.Connection) -> bool:
    """Tell whether the BI group role exists in this cluster."""
    return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", GROUP_ROLE))


async def ensure_reporting(conn: asyncpg.Connection, views: Sequence[View] | None = None
                           ) -> list[str]:
    """Create or update every reporting view whose sources exist; return those (re)made.

    Idempotent and safe to run from several processes at once (an advisory lock serialises
    it). Runs in the caller's transaction when there is one. A view that cannot be made is
    logged and skipped, never fatal: the service keeps serving the API.
    """
    made: list[str] = []
    async with conn.transaction():
        await lock(conn)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        available = await _public_relations(conn)
        existing = await _existing_views(conn)
        grant = await group_role_exists(conn)
        for view in views if views is not None else VIEWS:
            missing = [r for r in view.requires if r not in available]
            if missing:
                log.debug("reporting.%s waits for %s", view.name, ", ".join(missing))
                continue
            if existing.get(view.name, "absent") == view.fingerprint:
                continue
            try:
                async with conn.transaction():
                    await _make(conn, view, grant)
            except asyncpg.PostgresError as exc:
                log.warning("reporting.%s could not be created: %s", view.name, exc)
                continue
            made.append(view.name)
    if made:
        log.info("reporting views made: %s", ", ".join(made))
    return made


async def _make(conn: asyncpg.Connection, view: View, grant: bool) -> None:
    try:
        async with conn.transaction():
            await conn.execute(view.ddl())
    except (asyncpg.InvalidTableDefinitionError, asyncpg.DatatypeMismatchError,
            asyncpg.FeatureNotSupportedError):
        # The columns changed in a way CREATE OR REPLACE refuses (only a new code version
        # would do that, and the contract says it must not): rebuild the view.
        log.warning("reporting.%s changed shape; recreating it", view.name)
        await conn.execute(f"DROP VIEW IF EXISTS {SCHEMA}.{view.name}")
        await conn.execute(view.ddl())
    if grant:
        await conn.execute(f"GRANT SELECT ON {SCHEMA}.{view.name} TO {GROUP_ROLE}")
    await conn.execute(
        "INSERT INTO reporting_view_state (name, fingerprint, made_at) VALUES ($1, $2, now())"
        " ON CONFLICT (name) DO UPDATE SET fingerprint = $2, made_at = now()",
        view.name, view.fingerprint,
    )
