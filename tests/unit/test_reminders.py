"""Reminders, the pure part: the catalogues translate every email string with the same
placeholders, the digest waits while the urgent go at once, and contact details are checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from service.config import Settings, settings_problems
from service.domain import directory as d
from service.domain import reminders as r
from service.domain.cycle import CyclePublished
from service.domain.errors import DomainError
from service.domain.release import AppealDecided, ResultReleased
from service.domain.results import ResultDecision
from service.mail.i18n import translations, translator
from service.mail.smtp import parse_smtp_url

TRANSLATED = [name for name in d.LOCALES if name != d.DEFAULT_LOCALE]
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def catalogue_problems(messages: tuple[str, ...], found: dict[str, str]) -> list[str]:
    """List each email string a catalogue lacks, and each translation whose placeholders
    differ from the English."""
    problems = []
    for message in messages:
        if not found.get(message):
            problems.append(f"missing: {message!r}")
        elif r.placeholders(found[message]) != r.placeholders(message):
            problems.append(f"placeholders differ: {message!r} -> {found[message]!r}")
    return problems


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_email_string_is_translated_with_the_same_placeholders(locale: str) -> None:
    assert catalogue_problems(r.MESSAGES, translations(locale)) == []


def test_the_check_fails_on_a_missing_string_or_a_dropped_placeholder() -> None:
    good = translations("ko")
    line = r.KINDS["plan_due"].line
    dropped = {**good, line: good[line].replace("{due_at}", "")}
    missing = {k: v for k, v in good.items() if k != r.DIGEST_TITLE}
    assert catalogue_problems(r.MESSAGES, dropped) == [
        f"placeholders differ: {line!r} -> {dropped[line]!r}"]
    assert catalogue_problems(r.MESSAGES, missing) == [f"missing: {r.DIGEST_TITLE!r}"]


def test_an_email_is_written_in_the_readers_language_and_time_zone() -> None:
    reminder = r.Reminder("a-1", "plan_due", "t-1:2026-11:p1", {
        "team_id": "t-1", "period": "2026-11", "due_at": "2026-12-10T09:30:00+00:00"})
    teams = {"t-1": r.TeamView("Seoul desk", "Asia/Seoul")}
    korean = r.render("a-1", [reminder], "ko", translator("ko"), teams)
    assert korean.subject == "개선 계획 제출 기한 안내"
    assert "Seoul desk 2026-11 개선 계획 제출 기한은 2026. 12. 10. 오후 6:30:00 (Asia/Seoul)" \
        in korean.body
    english = r.render("a-1", [reminder], "en", translator("en"), teams)
    assert "due by Dec 10, 2026, 6:30:00\u202fPM (Asia/Seoul)" in english.body
    chinese = r.render("a-1", [reminder, reminder], "zh_Hans", translator("zh_Hans"), {})
    assert chinese.subject == "csperf 提醒"
    line = "t-1 2026-11 的改进计划须在 2026年12月10日 09:30:00 (UTC) 之前提交"
    assert chinese.body.count(line) == 2


def test_publication_reminds_the_agents_who_owe_a_plan_and_no_one_else() -> None:
    due = NOW + timedelta(days=7)
    published = CyclePublished(team_id="t", period="2026-11", published_at=NOW, publication=2,
                               decisions=(
        ResultDecision(kind="reward", agent_id="a", rank=1, places=(1, 1), amount=1.0,
                       currency="CNY", reason="first"),
        ResultDecision(kind="improvement_plan", agent_id="d", rank=4, places=(4, 4),
                       due_at=due, reason="bottom two"),
    ))
    [reminder] = r.derive(published)
    assert (reminder.person_id, reminder.kind, reminder.subject) == ("d", "plan_due",
                                                                     "t:2026-11")
    assert reminder.params["due_at"] == due.isoformat()
    # The idempotency key: the same reminder derived again, or from a correction's
    # republication that still asks for the plan, is the same row
    assert r.derive(published)[0].reminder_id == reminder.reminder_id
    again = published.model_copy(update={"publication": 3})
    assert r.derive(again)[0].reminder_id == reminder.reminder_id


def test_a_release_and_an_appeal_decision_reach_the_agent_in_their_language() -> None:
    released = ResultReleased(team_id="t-1", period="2026-11", agent_id="a-1", by="manager",
                              released_by="m-1", released_at=NOW,
                              appeal_until=NOW + timedelta(days=5),
                              plan_due_at=NOW + timedelta(days=7))
    [reminder] = r.derive(released)
    assert (reminder.person_id, reminder.kind, reminder.subject) == (
        "a-1", "result_released", "t-1:2026-11")
    teams = {"t-1": r.TeamView("Seoul desk", "Asia/Seoul")}
    korean = r.render("a-1", [reminder], "ko", translator("ko"), teams)
    assert korean.subject == "이번 달 평가 결과가 공개되었습니다"
    assert "2026. 12. 8. 오후 6:30:00 (Asia/Seoul)까지 한 번 이의를 제기할 수 있습니다" \
        in korean.body
    for decision, kind in (("uphold", "appeal_upheld"), ("amend", "appeal_amended")):
        decided = AppealDecided(appeal_id="t-1:2026-11:a-1", team_id="t-1", period="2026-11",
                                agent_id="a-1", decision=decision, note="see the log",
                                decided_by="m-1", decided_at=NOW)
        [told] = r.derive(decided)
        assert (told.person_id, told.kind) == ("a-1", kind)
        english = r.render("a-1", [told], "en", translator("en"), teams)
        assert english.subject == "Your appeal was decided" and "see the log" in english.body
        chinese = r.render("a-1", [told], "zh_Hans", translator("zh_Hans"), teams)
        assert chinese.subject == "您的申诉已有决定"
        assert ("维持原结果" in chinese.body) is (decision == "uphold")


def _pending(kind: str, minutes_ago: float) -> r.Pending:
    reminder = r.Reminder("p", kind, uuid.uuid4().hex, {})
    return r.Pending(reminder.reminder_id, reminder, NOW - timedelta(minutes=minutes_ago))


def test_the_digest_gathers_and_waits_but_an_overdue_plan_goes_at_once() -> None:
    due, overdue = _pending("plan_due", 10), _pending("plan_overdue", 0)
    assert r.due_now([due, overdue], now=NOW, hold_seconds=300, digest_sent_today=False) == (
        [overdue], [due])
    # a burst is held until its oldest item waited hold_seconds
    assert r.due_now([_pending("plan_due", 1)], now=NOW, hold_seconds=300,
                     digest_sent_today=False) == ([], [])
    # one digest a day: the rest waits for tomorrow, the overdue plan does not
    assert r.due_now([due, overdue], now=NOW, hold_seconds=0, digest_sent_today=True) == (
        [overdue], [])
    assert r.digest_message_id("p", NOW.date()) == r.digest_message_id("p", NOW.date())


def test_contact_details_are_checked_and_unchanged_ones_record_nothing() -> None:
    cmd = d.PutPerson("m-1", "mina@example.com", "zh-Hans", True,
                      frozenset({"email", "locale", "reminders"}))
    [changed] = d.decide_put_person(None, cmd)
    assert isinstance(changed, d.PersonContactChanged)
    assert (changed.email, changed.locale, changed.reminders) == ("mina@example.com",
                                                                  "zh_Hans", True)
    state = d.evolve_person(None, changed)
    assert d.decide_put_person(state, cmd) == []
    # the person turns reminders off: the address stays
    [off] = d.decide_put_person(state, d.PutPerson("m-1", reminders=False,
                                                   sent=frozenset({"reminders"})))
    assert isinstance(off, d.PersonContactChanged)
    assert (off.email, off.reminders) == ("mina@example.com", False)
    for email in ("no-at-sign", "a@b", "a b@example.com", "x@example.com\r\nBcc: y@z.com"):
        with pytest.raises(DomainError) as refused:
            d.decide_put_person(None, d.PutPerson("m-1", email=email, sent=frozenset({"email"})))
        assert [e.field for e in refused.value.errors] == ["email"]
    with pytest.raises(DomainError) as refused:
        d.decide_put_person(None, d.PutPerson("m-1", locale="fr", sent=frozenset({"locale"})))
    assert [e.field for e in refused.value.errors] == ["locale"]


def test_the_smtp_url_is_read_and_its_password_never_shown() -> None:
    server = parse_smtp_url("smtp://mailer:s3cret%21pw@mail.example.com:587?starttls=true")
    assert (server.host, server.port, server.security, server.username, server.password) == (
        "mail.example.com", 587, "starttls", "mailer", "s3cret!pw")
    assert "s3cret" not in repr(server) and server.origin == "mail.example.com:587"
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    settings = Settings(smtp_url="smtp://mailer:pw-abc@mail.example.com:587")  # type: ignore[arg-type]
    assert "pw-abc" not in repr(settings)
    for url in ("ftp://mailer:pw-abc@mail.example.com", "smtp://mailer:pw-abc@:25",
                "smtps://mailer:pw-abc@h?starttls=true", "smtp://mailer:pw-abc@h?tls=1"):
        with pytest.raises(ValidationError) as refused:
            Settings(smtp_url=url)  # type: ignore[arg-type]
        [line] = settings_problems(refused.value)
        assert line.startswith("invalid setting CSPERF_SMTP_URL: ") and "pw-abc" not in line
