"""The page catalogues (service/locale/*/LC_MESSAGES/ui.po): every string a page shows is
translated into each language, with the same placeholders as the English.

The strings are extracted the way ``make messages`` extracts them (Babel with
service/locale/babel.cfg, from the templates and service/ui), not read from the committed
``ui.pot``, so a template string added without running ``make messages`` and translating it
fails here.
"""

from __future__ import annotations

import ast
import glob
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from service import i18n
from service.domain import reminders

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in i18n.LANGUAGES if language != i18n.DEFAULT_LANGUAGE]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def page_strings() -> set[str]:
    """Return every message id of the pages, extracted from the sources as they are now."""
    with (ROOT / "service" / "locale" / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: set[str] = set()
    keywords: dict[str, tuple[int, ...] | None] = {"_": None, "gettext": None,
                                                   "ngettext": (1, 2)}
    for keyword in i18n.EXTRACT_KEYWORDS:
        name, _, position = keyword.partition(":")
        keywords[name] = tuple(int(p) for p in position.split(",")) if position else None
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map,
                                                keywords=keywords):
        for one in (message if isinstance(message, tuple) else (message,)):
            if one:
                found.add(one)
    return found


def marked_messages() -> dict[str, str]:
    """Return each literal message the extracted Python modules give an extraction keyword
    (``N_("...")``, ``NotFound("...")``, ``Problem(403, "...")``), by where it is: read from
    the syntax tree, not by Babel."""
    cfg = (ROOT / "service" / "locale" / "babel.cfg").read_text()
    files = sorted({Path(path) for pattern in re.findall(r"^\[python: (.+)\]", cfg, re.M)
                    for path in glob.glob(str(ROOT / pattern), recursive=True)})
    positions = {"_": [0], "gettext": [0], "ngettext": [0, 1]}
    for keyword in i18n.EXTRACT_KEYWORDS:
        name, _, where = keyword.partition(":")
        positions[name] = [int(p) - 1 for p in where.split(",")] if where else [0]
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            for index in positions.get(name, []):
                if index < len(node.args) and isinstance(node.args[index], ast.Constant) \
                        and isinstance(node.args[index].value, str):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found[where] = node.args[index].value
    return found


def placeholders(text: str) -> list[str]:
    return sorted(a or b for a, b in PLACEHOLDER.findall(text))


def problems(wanted: set[str], found: dict[str, str]) -> list[str]:
    """List each wanted string the catalogue lacks, and each translation whose placeholders
    differ from its English."""
    listed = [f"missing: {m!r}" for m in sorted(wanted) if not found.get(m)]
    return listed + [f"placeholders differ: {m!r} -> {t!r}" for m, t in sorted(found.items())
                     if placeholders(m) != placeholders(t)]


def catalogue(language: str, domain: str) -> dict[str, str]:
    """Return a catalogue's entries by id (a plural's forms each under its own id)."""
    return i18n.messages(language, domain)


def test_the_extraction_finds_every_marked_message() -> None:
    """Babel's extractor skips a keyword's message nested in another keyword's call (a
    FieldError written inside its DomainError): every one must be where it finds it."""
    strings = page_strings()
    marked = marked_messages()
    assert "a forced close needs a reason" in marked.values()  # a refusal
    assert [f"{where}: {text!r}" for where, text in marked.items() if text not in strings] == []


def test_the_extraction_finds_the_templates_and_the_code() -> None:
    strings = page_strings()
    assert "Download Excel" in strings  # a template
    assert "The month is open." in strings  # service/ui/routes.py, marked with N_
    assert len(strings) > 250


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_page_string_is_translated_with_its_placeholders(language: str) -> None:
    assert problems(page_strings(), catalogue(language, "ui")) == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_email_translation_keeps_its_placeholders(language: str) -> None:
    assert problems(set(reminders.MESSAGES), catalogue(language, "mail")) == []


def test_the_check_fails_on_a_missing_string_or_a_dropped_placeholder() -> None:
    good = catalogue("ko", "ui")
    line = "Close %(month)s"
    dropped = {**good, line: good[line].replace("%(month)s", "")}
    missing = {k: v for k, v in good.items() if k != "Download Excel"}
    wanted = page_strings()
    assert problems(wanted, dropped) == [f"placeholders differ: {line!r} -> {dropped[line]!r}"]
    assert problems(wanted, missing) == ["missing: 'Download Excel'"]
    assert problems(wanted | {"A new template string"}, good) == [
        "missing: 'A new template string'"]


def test_a_catalogue_is_read_from_its_po_file_without_a_compile_step() -> None:
    assert not list((ROOT / "service" / "locale").rglob("*.mo"))
    assert i18n.translations("ko", "ui").gettext("Download Excel") == "Excel 다운로드"
    assert i18n.translations("zh_Hans", "ui").ngettext(
        "%(n)s day left", "%(n)s days left", 3) == "剩余 %(n)s 天"
    assert i18n.translations("en", "ui").gettext("Download Excel") == "Download Excel"


@pytest.mark.parametrize(("header", "language"), [
    ("ko-KR,ko;q=0.9,en;q=0.8", "ko"),
    ("fr-CH, fr;q=0.9, zh-CN;q=0.8", "zh_Hans"),
    ("zh-Hans", "zh_Hans"),
    ("zh-TW,zh-Hant;q=0.9,ko;q=0.1", "ko"),  # Traditional Chinese is not Simplified
    ("en-US,en;q=0.9,ko;q=0.8", "en"),
    ("ko;q=0, en;q=0.5", "en"),  # q=0: not acceptable
])
def test_accept_language_picks_the_best_language_we_have(header: str, language: str) -> None:
    assert i18n.accepted(header) == language


@pytest.mark.parametrize("header", [
    "", "*", "xx-YY", "tlh-Piqd;q=abc", "de-DE,fr;q=0.5", "ko;q=2", ";;;,,,", "a" * 5000,
    "\u00e9\u00e8-\u4e2d", "zh-Hant-TW",
])
def test_an_unknown_accept_language_gives_none(header: str) -> None:
    assert i18n.accepted(header) is None
