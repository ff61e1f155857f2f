"""Public holidays of a country (or one of its regions), from the ``holidays`` package, as the local
dates a business calendar takes off.

An office closed on a public holiday that nobody listed in the settings looks, to a monitor, like a
source that stopped: it was paged silent the morning of the day, the items open then were held as ones
whose events may have been lost (never paged as stalled), and the day counted as working time in every
duration that spanned it. A named time zone is a good guess of the country whose holidays the office
keeps (``Europe/Berlin``: Germany), so ``auto`` takes that country's; the engine takes a listed day
back as a working day once the source is seen working on it (``Engine._worked_holiday``).

    >>> spec = holiday_spec("auto", "America/New_York")
    >>> spec
    'US'
    >>> date(2026, 11, 26) in public_holidays(spec)  # Thanksgiving
    True
    >>> holiday_spec("auto", "UTC") is None  # no country keeps UTC
    True
    >>> holiday_spec("auto", "US/Eastern")  # an old name of America/New_York
    'US'
    >>> holiday_spec("DE-BY", "UTC")  # named: a country, or a country and one of its regions
    'DE-BY'
    >>> holiday_key("US", date(2026, 10, 12))  # a day worked is the same holiday in every year by this
    'Columbus Day'
    >>> holiday_key("HU", date(2026, 10, 23))  # ... unless its name is that of another day of its year too
    ''
"""

from __future__ import annotations

import importlib.resources
import zoneinfo
from datetime import date
from functools import lru_cache
from pathlib import Path

# the years whose holidays a calendar holds: logs from 1995 on, streams until 2060
YEARS = range(1995, 2061)

__all__ = ["YEARS", "check_spec", "holiday_key", "holiday_spec", "public_holidays", "zone_country"]


def _tz_file(name: str) -> str:
    """A file of the tz database: the ``tzdata`` package's, else the system's; "" when neither has it."""
    try:
        return importlib.resources.files("tzdata").joinpath("zoneinfo", name).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        for p in zoneinfo.TZPATH:
            if (Path(p) / name).exists():
                return (Path(p) / name).read_text()
    return ""


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    """Time zone -> ISO 3166 country code, from the tz database's ``zone.tab`` (one country a zone), and
    for the old names (``US/Eastern``, ``Asia/Calcutta``) that of the zone they link to (``tzdata.zi``)."""
    out: dict[str, str] = {}
    for line in _tz_file("zone.tab").splitlines():
        fields = line.split("\t")
        if not line.startswith("#") and len(fields) >= 3:
            out[fields[2]] = fields[0]
    for line in _tz_file("tzdata.zi").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L" and fields[1] in out:
            out.setdefault(fields[2], out[fields[1]])
    return out


def zone_country(zone: str) -> str | None:
    """The country a time zone is kept in (``Europe/Amsterdam``: ``NL``); None for ``UTC`` and the like."""
    return _zone_countries().get(zone)


def check_spec(spec: str) -> str:
    """A ``public_holidays`` setting, checked: ``auto``, ``none``, a country code (``US``) or a country
    and one of its regions (``US-CA``, ``DE-BY``) that the ``holidays`` package knows. Raises ValueError."""
    if spec in ("auto", "none"):
        return spec
    import holidays

    country, _, region = spec.partition("-")
    known = holidays.list_supported_countries()
    if country not in known:
        raise ValueError(f"unknown country {country!r} for public holidays (a code like US, DE, NL; or auto, none)")
    if region and region not in known[country]:
        raise ValueError(f"{country} has no region {region!r} for public holidays "
                         f"(known: {', '.join(known[country][:12])}{', ...' if len(known[country]) > 12 else ''})")
    return spec


def holiday_spec(spec: str, zone: str | None) -> str | None:
    """The country (and region) whose holidays apply: ``spec`` itself when it names one, the country of
    ``zone`` (a zone the settings name) for ``auto``, None for ``none`` or when no country is known."""
    if spec == "none":
        return None
    if spec == "auto":
        return zone_country(zone) if zone else None
    return spec


@lru_cache(maxsize=16)
def _named(spec: str) -> dict[date, str]:
    import holidays

    country, _, region = spec.partition("-")
    if country not in holidays.list_supported_countries():  # a zone's country the package has no holidays of
        return {}
    return dict(holidays.country_holidays(country, subdiv=region or None, years=YEARS))


@lru_cache(maxsize=16)
def public_holidays(spec: str | None) -> tuple[date, ...]:
    """The public holidays of ``spec`` (``US``, ``US-CA``; see :func:`holiday_spec`) in :data:`YEARS`,
    in order; none for None or a country the ``holidays`` package does not know."""
    return () if spec is None else tuple(sorted(_named(spec)))


@lru_cache(maxsize=16)
def _keys(spec: str) -> dict[date, str]:
    named = _named(spec)
    plain = {d: n.removesuffix(" (estimated)") for d, n in named.items() if "; " not in n}
    per_year: dict[tuple[int, str], int] = {}
    for d, n in plain.items():
        per_year[(d.year, n)] = per_year.get((d.year, n), 0) + 1
    return {d: n for d, n in plain.items() if per_year[(d.year, n)] == 1}


def holiday_key(spec: str | None, day: date) -> str:
    """The name by which ``day`` is the same holiday in every year among ``spec``'s public holidays
    (``Labor Day``; an estimated date's name without "(estimated)"); "" when it is none of them, shares
    its date with another (two names), or its name is that of several days of its year (Hungary's two
    "National Day"s, Russia's week of "New Year Holidays")."""
    return "" if spec is None else _keys(spec).get(day, "")
