"""The ledger's reasons (and why an agent is not ranked) in the page's language.

A reward, deduction, plan or review carries its reason as the domain wrote it, in English, with
the standing that decided it ("last place: rank 6 of 6"); the event keeps it so. A page reads
the reasons the domain writes (service/domain/results.py) back into their parts and says them
again from the catalogue; a reason of any other shape shows as it was stored.
"""

from __future__ import annotations

import re

from service.ui.page_language import gettext, ngettext

_STANDING = r"rank (?P<rank>\d+) of (?P<of>\d+)(?:, tied \(places (?P<first>\d+)-(?P<last>\d+)\))?"
_FIRST = re.compile(rf"first place: {_STANDING}")
_LAST = re.compile(rf"last place: {_STANDING}")
_BOTTOM = re.compile(rf"bottom two \(places (?P<b1>\d+)-(?P<b2>\d+) of (?P<n>\d+)\): {_STANDING};"
                     r" a plan is due (?P<days>\d+) days after (?P<start>publication|the result's"
                     r" release)")
#: Why an agent is not ranked (service/domain/presence.py).
_ACTIVE = re.compile(r"active (?P<active>\d+) of (?P<days>\d+) days")
_STREAK = re.compile(rf"last place in (?P<months>\d+) consecutive published months: {_STANDING}"
                     r" this month")
#: What a correction ends and what it opens (service/domain/sanctions.py, ``_ending`` and
#: ``_grant``): the publication or revision that settles it, and the correction it follows,
#: whose reason a person wrote (shown as written).
_CAUSE = (r"(?:the first publication of (?P<first_of>\d{4}-\d{2})|the correction of"
          r" (?P<corrected>\d{4}-\d{2}) \(publication (?P<corrected_pub>\d+)(?:: (?P<why>.*))?\))")
_BY = (rf"(?:publication (?P<pub>\d+)(?: \(correction: (?P<correction>.*)\))?"
       rf"|revision (?P<rev>\d+), after {_CAUSE},)")
_ENDING = re.compile(
    rf"{_BY} (?P<verb>no longer grants this|no longer calls for this)"
    r" (?P<word>reward|deduction|improvement plan|reassignment review) \(from publication"
    rf" (?P<from_pub>\d+)\): now (?:not ranked|{_STANDING})"
    r"(?P<stands>; the decision stands, marked for a person to look at again)?")
_REVISED = re.compile(rf"(?P<reason>.*) \(opened by revision (?P<rev>\d+), after {_CAUSE}\)")


def _standing(found: re.Match[str]) -> str:
    parts = found.groupdict()
    if parts.get("first"):
        return gettext("rank %(rank)s of %(of)s, tied (places %(first)s-%(last)s)") % parts
    return gettext("rank %(rank)s of %(of)s") % parts


def _cause(found: re.Match[str]) -> str:
    if found["first_of"]:
        return gettext("the first publication of %(period)s") % {"period": found["first_of"]}
    parts = {"period": found["corrected"], "n": found["corrected_pub"], "why": found["why"]}
    if found["why"] is not None:
        return gettext("the correction of %(period)s (publication %(n)s: %(why)s)") % parts
    return gettext("the correction of %(period)s (publication %(n)s)") % parts


def _ending(found: re.Match[str]) -> str:
    if found["rev"]:
        by = gettext("revision %(n)s, after %(cause)s,") % {"n": found["rev"],
                                                              "cause": _cause(found)}
    elif found["correction"] is not None:
        by = gettext("publication %(n)s (correction: %(why)s)") % {
            "n": found["pub"], "why": found["correction"]}
    else:
        by = gettext("publication %(n)s") % {"n": found["pub"]}
    parts = {"by": by, "word": gettext(found["word"]), "from": found["from_pub"],
             "now": _standing(found) if found["rank"] else gettext("not ranked")}
    text = (gettext("%(by)s no longer grants this %(word)s (from publication %(from)s): now"
                    " %(now)s") if found["verb"] == "no longer grants this" else
            gettext("%(by)s no longer calls for this %(word)s (from publication %(from)s): now"
                    " %(now)s")) % parts
    if found["stands"]:
        text += gettext("; the decision stands, marked for a person to look at again")
    return text


def reason_text(reason: str) -> str:
    """Return a ledger reason in the page's language (as stored when its shape is unknown)."""
    text = str(reason)
    if found := _ENDING.fullmatch(text):
        return _ending(found)
    if found := _REVISED.fullmatch(text):
        return gettext("%(reason)s (opened by revision %(n)s, after %(cause)s)") % {
            "reason": reason_text(found["reason"]), "n": found["rev"], "cause": _cause(found)}
    if found := _FIRST.fullmatch(text):
        return gettext("first place: %(standing)s") % {"standing": _standing(found)}
    if found := _LAST.fullmatch(text):
        return gettext("last place: %(standing)s") % {"standing": _standing(found)}
    if found := _BOTTOM.fullmatch(text):
        days = int(found["days"])
        due = (ngettext("a plan is due %(n)s day after publication",
                        "a plan is due %(n)s days after publication", days)
               if found["start"] == "publication" else
               ngettext("a plan is due %(n)s day after the result's release",
                        "a plan is due %(n)s days after the result's release", days))
        return gettext("bottom two (places %(b1)s-%(b2)s of %(n)s): %(standing)s; %(due)s") % {
            "b1": found["b1"], "b2": found["b2"], "n": found["n"],
            "standing": _standing(found), "due": due % {"n": days}}
    if found := _STREAK.fullmatch(text):
        return gettext("last place in %(months)s consecutive published months: %(standing)s"
                       " this month") % {"months": found["months"], "standing": _standing(found)}
    if found := _ACTIVE.fullmatch(text):
        return gettext("active %(active)s of %(days)s days") % found.groupdict()
    return gettext(text)
