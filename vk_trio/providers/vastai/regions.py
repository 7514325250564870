"""``vast.ai/region``: a continent name or a list of country codes, as Vast.ai filters them.

Vast.ai's ``geolocation`` is free text ending in a two-letter country code (``"Texas, US"``)
and the search filters it by that code (``{"geolocation": {"in": ["US", "CA"]}}``). Users of
the Python Vast.ai kubelet wrote continent names (``"North America"``, ``"Europe"``,
``"Asia"``) or nothing for a global search; the official CLI knows the same continents plus
South America, Oceania and Africa. So a region value is a comma-separated list whose items are
continent names (any case; spaces, ``_`` or ``-`` between words) or ISO 3166 country codes, and
an unknown item is a mistake the user must hear about, never a silent "no offers".

Transcontinental countries (Turkey, Russia, the Caucasus, Egypt) are listed where travellers and
latency both put them; a user who disagrees writes the codes.
"""

from __future__ import annotations

import re


def _codes(text: str) -> tuple[str, ...]:
    return tuple(text.split())


REGIONS: dict[str, tuple[str, ...]] = {
    "north america": _codes(
        "US CA MX GT BZ SV HN NI CR PA CU DO HT JM PR BS BB TT AG DM GD KN LC VC BM GL"
    ),
    "south america": _codes("AR BO BR CL CO EC GY PY PE SR UY VE GF FK"),
    "europe": _codes(
        "AL AD AT BY BE BA BG HR CY CZ DK EE FI FR DE GR HU IS IE IT XK LV LI LT LU MT MD MC "
        "ME NL MK NO PL PT RO RU SM RS SK SI ES SE CH UA GB VA FO GI IM JE GG AX TR"
    ),
    "asia": _codes(
        "AF AM AZ BH BD BT BN KH CN GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB MO MY MV MN MM "
        "NP KP OM PK PS PH QA SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE"
    ),
    "oceania": _codes("AU NZ FJ PG SB VU NC PF WS TO KI FM MH PW NR TV GU AS MP CK NU"),
    "africa": _codes(
        "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR "
        "LY MG MW ML MR MU MA MZ NA NE NG RW ST SN SC SL SO ZA SS SD TZ TG TN UG ZM ZW RE YT"
    ),
}
ALIASES = {"eu": "europe", "global": "", "any": "", "all": "", "world": ""}
COUNTRIES = frozenset(code for codes in REGIONS.values() for code in codes) | {"AQ", "SH"}
_CODE = re.compile(r"^[A-Za-z]{2}$")


class RegionError(ValueError):
    """A region value that names neither a continent nor a country."""


def countries(value: str) -> tuple[str, ...] | None:
    """The country codes ``value`` names, sorted; ``None`` for a global search."""
    codes: set[str] = set()
    for raw in value.split(","):
        item = " ".join(re.split(r"[\s_-]+", raw.strip().lower())).strip()
        item = ALIASES.get(item, item)
        if not item:
            continue
        if item in REGIONS:
            codes.update(REGIONS[item])
        elif _CODE.match(item) and item.upper() in COUNTRIES:
            codes.add(item.upper())
        else:
            known = ", ".join(name.title() for name in REGIONS)
            raise RegionError(
                f"{raw.strip()!r} is neither a region ({known}) nor a two-letter country code"
            )
    return tuple(sorted(codes)) if codes else None
