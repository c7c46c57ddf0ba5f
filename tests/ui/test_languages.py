"""The pages in Korean, Simplified Chinese and English: how the language is chosen, what a
page then reads like, and that no choice, however odd, breaks a page."""

from __future__ import annotations

import html
import io
import re

import httpx
import openpyxl
import pytest

from service import i18n
from service.api.tabular import XLSX
from service.ui.session import CSRF_FIELD
from tests.ui.conftest import BASE, Shop, SignIn, hidden_token

BOARD = "/ui/teams/shop-sh?period=2026-10"


async def signed_in(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    """Sign a client in through the form; return no extra headers (the cookie does it)."""
    form = await client.get("/ui/signin")
    done = await client.post("/ui/signin", data={"key": key, CSRF_FIELD: hidden_token(form.text),
                                                 "next": "/ui"})
    assert done.status_code == 303
    return {}


def html_lang(page: httpx.Response) -> str:
    match = re.search(r'<html lang="([^"]+)"', page.text)
    assert match, "no lang on the page"
    return match.group(1)


async def test_the_browser_language_chooses_the_page_language(
        anonymous: httpx.AsyncClient) -> None:
    korean = await anonymous.get("/ui/signin", headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    assert korean.status_code == 200 and html_lang(korean) == "ko"
    assert "<h1>로그인</h1>" in korean.text and "API 키" in korean.text
    chinese = await anonymous.get("/ui/signin", headers={"Accept-Language": "zh-CN"})
    assert html_lang(chinese) == "zh-Hans" and "<h1>登录</h1>" in chinese.text
    english = await anonymous.get("/ui/signin", headers={"Accept-Language": "en-GB"})
    assert html_lang(english) == "en" and "<h1>Sign in</h1>" in english.text


@pytest.mark.parametrize("header", ["xx-YY", "tlh;q=abc, *;q=0.1", "zh-Hant-TW", "a" * 3000,
                                    ";;,,", "ko;q=5"])
async def test_an_unknown_accept_language_falls_back_never_a_500(
        anonymous: httpx.AsyncClient, header: str) -> None:
    page = await anonymous.get("/ui/signin", headers={"Accept-Language": header})
    assert page.status_code == 200 and html_lang(page) == "en"


async def test_a_choice_made_on_the_page_is_kept_in_a_cookie(
        anonymous: httpx.AsyncClient) -> None:
    chosen = await anonymous.get("/ui/signin?lang=zh_Hans",
                                 headers={"Accept-Language": "ko"})
    assert html_lang(chosen) == "zh-Hans"
    cookie = chosen.headers["set-cookie"]
    assert f"{i18n.COOKIE}=zh_Hans" in cookie and "HttpOnly" in cookie
    # The next page, without ?lang=: the cookie wins over the browser's Accept-Language.
    later = await anonymous.get("/ui/signin", headers={"Accept-Language": "ko"})
    assert html_lang(later) == "zh-Hans"
    # A BCP 47 spelling works too; an unknown one is ignored (no cookie, no error).
    assert html_lang(await anonymous.get("/ui/signin?lang=ko-KR")) == "ko"
    odd = await anonymous.get("/ui/signin?lang=%3Cscript%3E")
    assert odd.status_code == 200 and html_lang(odd) == "ko"
    assert i18n.COOKIE not in odd.headers.get("set-cookie", "")


async def test_every_page_offers_each_language_named_in_itself(
        anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/ui/signin?next=%2Fui")
    switcher = page.text.split('class="languages"')[1].split("</nav>")[0]
    assert "English" in switcher and "한국어" in switcher and "中文 (简体)" in switcher
    # The links keep the page's own query.
    assert "/ui/signin?next=%2Fui&amp;lang=ko" in switcher


async def test_a_board_in_korean_and_chinese(sign_in: SignIn) -> None:
    client = await sign_in("m-chen")
    korean = await client.get(BOARD + "&lang=ko")
    assert korean.status_code == 200
    assert "2026년 10월" in korean.text  # the month, by CLDR
    assert "순위" in korean.text and "CSV 다운로드" in korean.text
    assert "Download CSV" not in korean.text
    chinese = await client.get(BOARD + "&lang=zh_Hans")
    # A Chinese reader of the Shanghai team: zh_Hans_CN's money and dates.
    assert "¥100.00" in chinese.text and "CN¥" not in chinese.text
    assert "发布于 2026年11月5日 10:00 CST" in chinese.text
    assert "下载 Excel" in chinese.text


async def test_an_agent_page_and_the_report_in_korean(sign_in: SignIn) -> None:
    client = await sign_in("m-chen")
    agent = await client.get("/ui/agents/sh-wang-lei?period=2026-10&lang=ko")
    assert agent.status_code == 200 and "추이" in agent.text and "개선 계획" in agent.text
    report = await client.get("/ui/teams/shop-sh/months/2026-10/report?lang=ko")
    assert report.status_code == 200 and html_lang(report) == "ko"
    assert "월간 보고서" in report.text and "후속 조치" in report.text


async def test_problems_shown_on_pages_are_translated(sign_in: SignIn) -> None:
    client = await sign_in("m-chen")
    refused = await client.get("/ui/teams/shop-be?lang=zh_Hans")
    assert refused.status_code == 403
    main = refused.text.split("<main")[1].split("</main>")[0]
    assert "禁止访问" in refused.text and "您的密钥无权访问此页面" in refused.text, main
    # The JSON API stays English whatever the page language.
    api = await client.get("/v1/teams/shop-be", headers={"Accept-Language": "zh-CN"})
    assert "禁止" not in api.text


async def test_without_a_preference_the_team_locale_chooses(shop: Shop) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                 base_url=BASE) as client:  # no Accept-Language at all
        headers = await signed_in(client, shop.keys["m-chen"])
        shanghai = await client.get(BOARD, headers=headers)
        assert html_lang(shanghai) == "zh-Hans" and "排名" in shanghai.text
        # A browser that asks for English still gets English: the reader's choice comes first.
        english = await client.get(BOARD, headers={**headers, "Accept-Language": "en"})
        assert html_lang(english) == "en"


async def test_a_team_locale_is_normalised_cleared_and_refused_when_unknown(
        shop: Shop) -> None:
    admin = shop.api("admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                 base_url=BASE) as api:
        body = {"name": "Seoul desk", "timezone": "Asia/Seoul", "currency": "KRW"}
        created = await api.put("/v1/teams/t-seoul-lang", headers=admin,
                                json={**body, "locale": "KO-kr"})
        assert created.status_code in (200, 201) and created.json()["locale"] == "ko_KR"
        kept = await api.put("/v1/teams/t-seoul-lang", headers=admin, json=body)
        assert kept.json()["locale"] == "ko_KR"  # left out: unchanged
        bad = await api.put("/v1/teams/t-seoul-lang", headers=admin,
                            json={**body, "locale": "xx-nowhere"})
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["locale"]
        cleared = await api.put("/v1/teams/t-seoul-lang", headers=admin,
                                json={**body, "locale": ""})
        assert cleared.status_code == 200 and cleared.json()["locale"] is None


async def test_excel_money_cells_take_each_team_currency_format(shop: Shop) -> None:
    """Berlin (de_DE) writes the euro after the amount, Shanghai (zh_Hans_CN) ¥ before it."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                 base_url=BASE) as api:
        answer = await api.get("/v1/sanctions?kind=reward", headers={
            **shop.api("admin"), "Accept": XLSX})
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    formats = {}
    for sheet in book.worksheets:
        header = [c.value for c in sheet[1]]
        cell = sheet.cell(row=2, column=header.index("amount") + 1)
        assert cell.data_type == "n"
        formats[sheet.title] = cell.number_format
    assert formats["shop-be"].startswith('#,##0.00 "€"')
    assert formats["shop-sh"].startswith('"¥"#,##0.00')


#: Pages a reader walks: each role's pages, a ledger with corrections, a month's
#: warnings, and pages that refuse (the status each answers).
WALK = {
    "m-chen": [("/ui", 200), ("/ui/teams/shop-sh?period=2026-10", 200),
               ("/ui/teams/shop-sh?period=2026-09", 200), ("/ui/teams/shop-sh?period=2026-11", 200),
               ("/ui/agents/sh-wang-lei?period=2026-10", 200), ("/ui/agents/sh-zhao-min", 200),
               ("/ui/sanctions", 200), ("/ui/teams/shop-sh/months/2026-10/report", 200),
               ("/ui/teams/shop-sh/months/2026-11/evaluations/sh-wang-lei/manager", 200),
               ("/ui/agents/nobody", 404), ("/ui/teams/shop-sh/months/2026-11/report", 409),
               ("/ui/teams/shop-be", 403), ("/ui/teams/shop-sh?period=2026-13", 422)],
    "m-weber": [("/ui/teams/shop-be?period=2026-10", 200), ("/ui/agents/be-jonas-becker", 200),
                ("/ui/agents/be-noah-wagner", 200)],
    "sh-wang-lei": [("/ui/agents/sh-wang-lei", 200), ("/ui/teams/shop-sh?period=2026-10", 200),
                    ("/ui/teams/shop-sh/months/2026-11/evaluations/sh-wang-lei/manager", 403)],
}


def english_phrases(language: str = "ko") -> set[str]:
    """Return every run of three or more words that the pages' catalogue says differently in
    a language: the messages split at their placeholders, refusals and templates alike."""
    phrases = set()
    for english, translated in i18n.messages(language, "ui").items():
        if english == translated:
            continue
        for part in re.split(r"%\(\w+\)[sd]|\{\w+\}", english):
            part = part.strip(" ;:,.()“”\"'")
            if len(part.split()) >= 3:
                phrases.add(part)
    return phrases


def visible_text(page: httpx.Response) -> str:
    """Return what a person reads on a page: its text and its titles, as one line."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.text, flags=re.S)
    titles = " ".join(re.findall(r'\b(?:title|aria-label|placeholder|alt)="([^"]*)"', body))
    text = re.sub(r"<[^>]+>", " ", body) + " " + titles
    return " ".join(html.unescape(text).split())


async def walk(sign_in: SignIn, accept_language: str) -> dict[str, str]:
    """Return what each page of the walk shows a reader of a language, by who and where."""
    shown: dict[str, str] = {}
    for who, pages in WALK.items():
        client = await sign_in(who)
        client.headers["Accept-Language"] = accept_language
        for url, status in pages:
            page = await client.get(url)
            assert page.status_code == status, (url, page.text[:300])
            shown[f"{who} {url}"] = visible_text(page)
    return shown


async def test_a_chinese_reader_sees_no_english_message(sign_in: SignIn) -> None:
    """The same walk in Simplified Chinese, a refusal with words among its values included."""
    phrases = english_phrases("zh_Hans")
    shown = await walk(sign_in, "zh-CN,zh;q=0.9")
    assert "客服不能提交主管评价" in shown[
        "sh-wang-lei /ui/teams/shop-sh/months/2026-11/evaluations/sh-wang-lei/manager"]
    found = sorted({(where, phrase) for where, text in shown.items() for phrase in phrases
                    if phrase in text})
    assert found == [], "\n".join(map(str, found))


async def test_a_korean_reader_sees_no_english_message(sign_in: SignIn, shop: Shop) -> None:
    """Pages, refusals included, say every message of the catalogue in Korean."""
    phrases = english_phrases()
    assert "only a closed cycle can be published; this one is" in phrases  # a refusal
    assert "expected evaluation(s) missing; resolve them, or close with force and a reason" \
        in phrases
    shown = await walk(sign_in, "ko-KR,ko;q=0.9")
    # A refused form: publishing the open month (the domain's conflict, with its values).
    client = await sign_in("m-chen")
    client.headers["Accept-Language"] = "ko"
    board = await client.get("/ui/teams/shop-sh?period=2026-11")
    refused = await client.post("/ui/teams/shop-sh/months/2026-11/publish",
                                data={CSRF_FIELD: hidden_token(board.text)})
    assert refused.status_code == 409
    shown["publish an open month"] = text = visible_text(refused)
    assert "마감된 월만 공개할 수 있습니다. 이 월은 진행 중 상태입니다" in text
    # A forced close without its reason: the refusal and its field's reason.
    forced = await client.post("/ui/teams/shop-sh/months/2026-11/close",
                               data={"force": "yes", "reason": " ",
                                     CSRF_FIELD: hidden_token(board.text)})
    assert forced.status_code == 422
    shown["a forced close without a reason"] = text = visible_text(forced)
    assert "강제 마감에는 사유가 필요합니다" in text and "강제 마감할 때 필요합니다" in text
    # A refused evaluation: a score above the scale (the scheme's reason, with its bound).
    url = "/ui/teams/shop-sh/months/2026-11/evaluations/sh-zhou-jie/manager"
    form = await client.get(url)
    scores = dict.fromkeys(("work_ability", "cooperation", "service", "report_timeliness",
                            "report_reliability"), "80")
    refused = await client.post(url, data={**scores, "report_quality": "101",
                                           CSRF_FIELD: hidden_token(form.text)})
    assert refused.status_code == 422
    shown["an evaluation out of range"] = text = visible_text(refused)
    assert "0에서 100 사이여야 합니다" in text and "must be between" not in text
    assert "월간 보고서" in shown["m-chen /ui/teams/shop-sh/months/2026-10/report"]
    refused_period = shown["m-chen /ui/teams/shop-sh?period=2026-13"]
    assert "period : 형식이 올바르지 않습니다" in refused_period  # not pydantic's English
    assert "Unprocessable" not in refused_period
    assert "상담원은(는) 관리자 평가를 제출할 수 없습니다" in shown[
        "sh-wang-lei /ui/teams/shop-sh/months/2026-11/evaluations/sh-wang-lei/manager"]
    found = sorted({(where, phrase) for where, text in shown.items() for phrase in phrases
                    if phrase in text})
    assert found == [], "\n".join(map(str, found))
    # The JSON API says the same refusal in English, whatever the Accept-Language.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                 base_url=BASE) as api:
        answer = await api.post("/v1/teams/shop-sh/cycles/2026-11/publish",
                                headers={**shop.api("m-chen"), "Accept-Language": "ko"})
    assert answer.status_code == 409
    assert answer.json()["detail"] == "only a closed cycle can be published; this one is open"
