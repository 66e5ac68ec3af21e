"""Six-field NCRONTAB schedules, as the Functions host reads a timer trigger's `schedule` (pure).

`{second} {minute} {hour} {day} {month} {day-of-week}` with `*`, `?`, lists, ranges, steps and English
month and day names; `acrguard serve` uses it to fire the app's timer functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class CronError(ValueError):
    """A schedule that is not a six-field NCRONTAB expression."""


_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
_MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


@dataclass(frozen=True)
class Schedule:
    """`{second} {minute} {hour} {day} {month} {day-of-week}`; day of week 0 (or 7) is Sunday."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    # Like cron: when both day fields are restricted, a time matching either one fires.
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, at: datetime) -> bool:
        weekday = (at.weekday() + 1) % 7  # Python: Monday 0; NCRONTAB: Sunday 0
        day_ok, weekday_ok = at.day in self.days, weekday in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, after: datetime) -> datetime:
        """The first matching whole second strictly after `after` (same time zone)."""
        at = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = at + timedelta(days=366 * 5)  # Feb 29 on a Sunday recurs within 28 years; no schedule waits that long
        while at < limit:
            # Skip whole months, days, hours and minutes that cannot match: at most a few thousand steps.
            if at.month not in self.months:
                at = (at.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0, second=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at = at.replace(second=0) + timedelta(minutes=1)
            elif at.second not in self.seconds:
                at += timedelta(seconds=1)
            else:
                return at
        raise CronError("schedule: no matching time within five years")


def parse_ncrontab(text: str) -> Schedule:
    parts = text.split()
    if len(parts) != 6:
        raise CronError(f"schedule {text!r}: expected six fields (second minute hour day month day-of-week)")
    sets: list[frozenset[int]] = []
    for part, (name, low, high) in zip(parts, _FIELDS, strict=True):
        names = _MONTHS if name == "month" else _DAYS if name == "weekday" else {}
        values = _parse_field(part.lower(), name, low, 7 if name == "weekday" else high, names)
        if name == "weekday":
            values = frozenset(v % 7 for v in values)  # 7 is Sunday too
        sets.append(values)
    second, minute, hour, day, month, weekday = sets
    restricted = (parts[3] not in ("*", "?"), parts[5] not in ("*", "?"))
    return Schedule(second, minute, hour, day, month, weekday, *restricted)


def _parse_field(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        spec, _, step_text = item.partition("/")
        step = _number(step_text, name, names) if step_text else 1
        if step < 1:
            raise CronError(f"schedule: {name} step must be positive: {item!r}")
        if spec in ("*", "?"):
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = _number(first, name, names), _number(last, name, names)
        else:
            start = _number(spec, name, names)
            end = high if step_text else start  # "5/10" means from 5 to the end in steps of 10
        if not low <= start <= end <= high:
            raise CronError(f"schedule: {name} {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str, names: Mapping[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise CronError(f"schedule: {name} value {text!r} is not a number")
    return int(text)
