"""The TravelPlanner evaluator: 8 commonsense and 5 hard constraints, per-episode numbers
for rewards, and the official metric arithmetic (delivery rate, micro/macro pass rates,
final pass rate).

A reimplementation of the official code (OSU-NLP-Group/TravelPlanner,
evaluation/commonsense_constraint.py, hard_constraint.py, eval.py) on dict lookups
through `Database` instead of pandas masks. Three modes:

`official` follows the current official evaluator: evaluation/ as of 8331615 (its last
change; repository HEAD da7c1d4, 2025-06-15), tools/ as of b8e48bf.
`official_v1` follows the evaluator of 3038ffd..24e017e (2024-01-28 to 2024-04-26), which
results published then (the paper's first tables among them) were computed with: the same
as `official` except quirk 5. Both were checked verdict for verdict, crashes included,
against the official source run on 8,166 mutated plans each (0 differences).

The official verdicts, quirks included (both official modes):
 1. Within current city, on a day without travel, takes the city string itself as the
    "list of cities", so every test iterates over its *characters*: a meal passes when
    any one letter of the city name occurs in it, a transportation when every letter
    does, and the accommodation is tested against the city's *last character*.
 2. Attractions are read with `split(';')[:-1]`: the last entry is ignored (in the
    sandbox, current-city and diversity checks) unless the list ends with ';'.
 3. Entity names match by substring (`str.contains`, literal, case-sensitive) plus exact
    city; an empty name matches every entity of the city. The first match (table order)
    gives prices, house rules and room types.
 4. Minimum nights is only checked when exactly one accommodation matches the name.
 5. House rules: `official` rejects a 'No parties' accommodation for a 'parties' query;
    `official_v1` compares the query with 'parities' (fixed in ed379c4), so it never does.
 6. Cuisine: a meal in the query's origin city `continue`s the day loop, so the rest of
    that day's meals are not looked at; cuisines match by substring of 'Cuisines'.
 7. Non-conflicting transportation fails when day 1 has no transportation.
 8. Complete information counts every non-empty key of a day (including 'days' and
    'current_city' and any extra key) against 6 x days, and also requires the right
    number of days (non-empty records among the first `days`) and of visited cities.
    A null (None) field is not "empty" for its rules ('-' or '' is), but is not counted.
 9. The budget looks flights up by number only (the first row with that number),
    ignoring the route; drives cost self-driving x ceil(people/5), taxi x ceil(people/4).
10. Only the first `days` records are read; extra days are ignored. A 'from' anywhere in
    current_city (not only a leading "from ") makes it a travel day.
11. Reasonable city route checks the day-1 origin only when day 1 is a travel day, and the
    state of the visited cities only for trips longer than 3 days (a 3-day trip may go to
    any known city, not necessarily the query's destination).
12. The transportation hard constraint is case-sensitive ('Flight', 'Self-driving').
13. Within sandbox checks a flight by number and route, not by date, and does not check a
    transportation that names no flight number, self-driving or taxi at all.
14. Where the official code raises (an empty record or a record without current_city or
    transportation among the first `days`; a null or non-text current_city, accommodation or
    attraction, an integer meal; 'from' in current_city without 'from A to B'; a flight
    without 'Flight Number: ' exactly: 'flight number:' or 'Flight Number:F1'), the whole
    official eval.py run dies. Deliberate deviation (training needs a verdict per plan): that
    one check fails with a reason that says so, the other checks go on, and the plan is
    flagged (`PlanResult.official_crash`, metric `official_would_crash`, its share in
    `official_metrics` and the env's aggregate) so a user comparing with the leaderboard
    knows how many plans the official script would not have scored.
15. A query that lists a cuisine twice never passes the cuisine check: it fails when a
    cuisine is missing; when all are served the check returns None and eval.py raises (14).

`strict` judges the constraints as the paper states them (no `official_would_crash`);
differences from `official`:
 - within current city: meals and attractions must be in one of the day's cities and the
   accommodation in the day's final city (parsed "Name, City", exact city); on a travel day
   the transportation must go from the day's first to its last city, and a day without
   travel must have none;
 - every attraction entry counts (trailing ';' optional); names match exactly (after
   stripping spaces) together with the city; restaurants/attractions repeat when the same
   (name, city) comes back, however written;
 - within sandbox: flights must match number, route and the day's date; an unknown
   transportation mode fails;
 - minimum nights is checked whenever the accommodation is found; runs of the same
   accommodation are counted by (name, city);
 - the transportation constraint is case-insensitive;
 - cuisine: each meal is judged on its own (only meals in the origin city are skipped), a
   cuisine must be one of the comma-separated 'Cuisines', and a cuisine listed twice counts once;
 - non-conflicting transportation does not require transportation on day 1;
 - complete information: exactly `days` non-empty records; null and '-' are both empty;
   only the 6 activity fields count toward "at most half empty";
 - reasonable route: day 1 leaves the origin, the last day returns to it, consecutive days
   chain (each day starts where the previous one ended), no city is revisited, and every
   visited city is the destination city (or lies in the destination state);
 - the budget prices each flight from the row that matches number, route and date.
Hard constraints are judged, in every mode, only when complete information and within
sandbox pass (as eval.py does).

Other deliberate deviations from the official code, with their reasons:
 - a plan text whose records are malformed (an empty record between days, a missing key, a
   non-text value) is not delivered, where eval.py, which gets records from an LLM parsing
   step, judges them or raises: here the agent writes the records itself, and a malformed
   plan must cost it (`malformed_result` still flags those the official code raises on);
 - trailing empty records are dropped (the annotated plans pad with {} after the last day,
   which eval.py ignores); a plan padded with {} *before* its last day (fewer records than
   days) makes eval.py raise, here it fails complete information, not flagged;
 - `official_metrics` divides by the number of queries given and counts every local
   constraint in the hard micro denominator, where eval.py hard-codes 45/180/1000 queries
   and does not count a medium query's transportation (the official queries have none).
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from questline.envs.travelplanner.database import Database

COMMONSENSE = ("within_sandbox", "complete_information", "within_current_city", "reasonable_city_route",
               "diverse_restaurants", "diverse_attractions", "non_conflicting_transportation",
               "minimum_nights")
HARD = ("budget", "room_rule", "room_type", "cuisine", "transportation")
MODES = ("official", "official_v1", "strict")
OFFICIAL_MODES = ("official", "official_v1")

# hard constraint -> key in the query's local_constraint (budget is always set)
LOCAL_KEYS = {"room_rule": "house rule", "room_type": "room type", "cuisine": "cuisine",
              "transportation": "transportation"}
METRIC_NAMES = {"delivery_rate": "Delivery Rate",
                "commonsense_micro": "Commonsense Constraint Micro Pass Rate",
                "commonsense_macro": "Commonsense Constraint Macro Pass Rate",
                "hard_micro": "Hard Constraint Micro Pass Rate",
                "hard_macro": "Hard Constraint Macro Pass Rate",
                "final_pass": "Final Pass Rate",
                "official_would_crash": "Plans the official eval.py crashes on"}
FIELDS = ("current_city", "transportation", "breakfast", "attraction", "lunch", "dinner", "accommodation")
ACTIVITIES = FIELDS[1:]
MEALS = ("breakfast", "lunch", "dinner")
NOT_NEEDED = "You don't need to fill in the information for this or later days."
# house rule asked for -> the accommodation rule that forbids it; the official code before
# ed379c4 spells 'parties' as 'parities', so official_v1 never checks a 'parties' query
HOUSE_RULES = {"smoking": "No smoking", "parties": "No parties", "children under 10": "No children under 10",
               "visitors": "No visitors", "pets": "No pets"}
V1_HOUSE_RULES = {("parities" if k == "parties" else k): v for k, v in HOUSE_RULES.items()}
ROOM_TYPES = {"shared room": "Shared room", "private room": "Private room", "entire room": "Entire home/apt"}

Verdict = tuple  # (passed: bool | None, reason: str | None)


class PlanError(ValueError):
    """The text holds no readable plan; the message says what is wrong and where.
    `records`: the list of records read, when it is the records that are malformed."""

    def __init__(self, message: str, records: list | None = None):
        super().__init__(message)
        self.records = records


# ------------------------------------------------------------------ parsing plans
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[\"']|[\[\]{}]", re.S)
_CLOSER = {"[": "]", "{": "}"}
MAX_STARTS = 20  # '[' positions tried before giving up


def parse_plan(text: str) -> list[dict]:
    """The list of day records in `text`: JSON or a Python literal, bare, in a ``` fence or
    surrounded by prose; trailing `{}` padding is dropped. Raises PlanError, nothing else."""
    try:
        return _parse_plan(text)
    except PlanError:
        raise
    except Exception as e:  # a safety net: the contract is PlanError only
        raise PlanError(f"unreadable plan ({type(e).__name__}: {e})") from None


def _parse_plan(text: str) -> list[dict]:
    if not isinstance(text, str):
        raise PlanError(f"plan text must be a string, got {type(text).__name__}")
    body, offset = text, 0
    for m in _FENCE.finditer(text):
        if "[" in m.group(1):
            body, offset = m.group(1), m.start(1)
            break
    starts = [i for i, ch in enumerate(body) if ch == "["][:MAX_STARTS]
    if not starts:
        raise PlanError("no plan found: expected a list of day records '[{...}, ...]'")
    first_error = records_error = None
    empty = False
    for start in starts:
        try:
            value = _decode(body, start, offset)
        except PlanError as e:
            first_error = first_error or e
            if records_error is None and body[start + 1:].lstrip().startswith("{"):
                records_error = e
            continue
        if isinstance(value, list) and all(isinstance(r, dict) for r in value):
            if any(value):
                return _check_records(value)
            empty = True  # '[]' or only {}: keep looking for a real plan
    if records_error or first_error:
        raise records_error or first_error
    raise PlanError("empty plan: no day records" if empty else "not a list of day records")


def _decode(body: str, start: int, offset: int):
    """Decode the bracketed value that opens at body[start] (JSON first, then a Python literal)."""
    src = body[start:_closing(body, start, offset)]
    try:
        return json.loads(src)
    except (json.JSONDecodeError, RecursionError) as e:
        json_error = e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in literals warn
            return ast.literal_eval(src)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        literal_error = e
    at = offset + start
    single_quoted = src.find("'") != -1 and (src.find('"') == -1 or src.find("'") < src.find('"'))
    if single_quoted and isinstance(literal_error, SyntaxError) and literal_error.lineno:
        lines = src.split("\n")
        pos = sum(len(x) + 1 for x in lines[:literal_error.lineno - 1]) + (literal_error.offset or 1) - 1
        raise PlanError(f"invalid Python literal at char {at + pos}: {literal_error.msg}")
    if single_quoted:
        raise PlanError(f"invalid Python literal at char {at}: {literal_error}")
    if isinstance(json_error, json.JSONDecodeError):
        raise PlanError(f"invalid JSON at char {at + json_error.pos}: {json_error.msg}")
    raise PlanError(f"invalid JSON at char {at}: nested too deeply")


def _closing(body: str, start: int, offset: int) -> int:
    """Index just past the bracket that closes body[start], skipping quoted strings."""
    stack = []
    for m in _TOKEN.finditer(body, start):
        tok = m.group()
        if tok in _CLOSER:
            stack.append(_CLOSER[tok])
        elif tok in "]}":
            if tok != stack[-1]:
                raise PlanError(f"mismatched {tok!r} at char {offset + m.start()} (expected {stack[-1]!r})")
            stack.pop()
            if not stack:
                return m.end()
        elif len(tok) == 1:  # a lone quote: the string never ends
            raise PlanError(f"unterminated string starting at char {offset + m.start()}")
    raise PlanError(f"unterminated JSON at char {offset + len(body)}: "
                    f"{len(stack)} bracket(s) opened at char {offset + start} never closed")


def _check_records(value: list) -> list[dict]:
    records = list(value)
    while records and not records[-1]:
        records.pop()  # the annotated plans pad with {}
    for i, record in enumerate(records, 1):
        if not record:
            raise PlanError(f"day {i}: empty record", records)
        if "days" not in record and "day" not in record:
            raise PlanError(f"day {i}: missing key 'days'", records)
        for key in FIELDS:
            if key not in record:
                raise PlanError(f"day {i}: missing key {key!r}", records)
            v = record[key]
            if not (isinstance(v, str) or (v is None and key != "current_city")):
                raise PlanError(f"day {i}: {key!r} must be a string, got {type(v).__name__}", records)
    return records


# ------------------------------------------------------------------ official string helpers
_FROM_TO = re.compile(r"from\s+(.+?)\s+to\s+([^,]+)(?=[,\s]|$)")
_PAREN = re.compile(r"^(.*?)\([^)]*\)")
_NAME_CITY = re.compile(r"(.*?),\s*([^,]+)(\(\w[\w\s]*\))?$")
_FLIGHT_NUMBER = re.compile(r"Flight Number:\s*([A-Za-z0-9]+)", re.I)


class _Crash(Exception):
    """The official code raises here (see quirk 14)."""


@lru_cache(maxsize=8192)
def from_to(text: str) -> tuple[str | None, str | None]:
    """'from A to B, ...' -> (A, B); (None, None) when absent."""
    m = _FROM_TO.search(text)
    return m.groups() if m else (None, None)


@lru_cache(maxsize=8192)
def before_paren(text: str) -> str:
    """'Austin(Texas)' -> 'Austin' (official extract_before_parenthesis)."""
    m = _PAREN.search(text)
    return m.group(1) if m else text


@lru_cache(maxsize=8192)
def name_city(text: str) -> tuple[str, str]:
    """'Name, City' -> ('Name', 'City'): split at the last comma; ('-', '-') when unreadable."""
    m = _NAME_CITY.search(text)
    if not m:
        return "-", "-"
    return m.group(1).strip(), before_paren(m.group(2).strip()).strip()


def travel_mode(text: str) -> str | None:
    """The official transportation_match: 'Taxi', 'Self-driving', 'Flight' or None."""
    low = text.lower()
    for key, mode in (("taxi", "Taxi"), ("self-driving", "Self-driving"), ("flight", "Flight")):
        if key in low:
            return mode
    return None


def _filled(value) -> bool:
    return bool(value) and value != "-"


def _field(unit: dict, key: str, i: int):
    """unit[key] where the official code indexes without checking."""
    if not isinstance(unit, dict) or key not in unit:
        raise _Crash(f"day {i + 1}: no {key!r}")
    return unit[key]


def _text(value, what: str, i: int) -> str:
    if not isinstance(value, str):
        raise _Crash(f"day {i + 1}: {what} is {type(value).__name__}, not text")
    return value


def _entries(attraction: str, strict: bool) -> list[str]:
    if strict:
        return [e.strip() for e in attraction.split(";") if e.strip()]
    return attraction.split(";")[:-1]  # quirk 2


# ------------------------------------------------------------------ context
class _Context:
    """One evaluation: the query, the days read, and memoised entity lookups."""

    TABLES = {"restaurant": ("restaurants_in", "Name"), "attraction": ("attractions_in", "Name"),
              "accommodation": ("accommodations_in", "NAME")}

    def __init__(self, db: Database, query: dict, plan: list, mode: str):
        self.db, self.query, self.mode, self.strict = db, query, mode, mode == "strict"
        self.crashes: list[str] = []  # official modes: where the official code would raise
        self.cost: float | None = None  # set by the budget check
        self.org, self.days, self.people = query["org"], query["days"], query["people_number"]
        self.local = query.get("local_constraint") or {}
        self.plan = plan
        if self.strict:
            plan = [u for u in plan if u]
        self.units = plan[:self.days]
        self._memo: dict[tuple, list[dict]] = {}

    def rows(self, kind: str, text: str) -> list[dict]:
        """Entities that `text` ('Name, City') names: substring match (official) or exact."""
        if not isinstance(text, str):
            raise _Crash(f"{kind} {text!r} is not text")
        key = (kind, text)
        hit = self._memo.get(key)
        if hit is None:
            name, city = name_city(text)
            getter, column = self.TABLES[kind]
            rows = getattr(self.db, getter)(city)
            if self.strict:
                hit = [r for r in rows if str(r[column]).strip() == name]
            else:
                hit = [r for r in rows if name in str(r[column])]
            self._memo[key] = hit
        return hit

    def entity(self, kind: str, text: str) -> tuple[str, str]:
        """(name, city) normalised, for repeats in strict mode."""
        name, city = name_city(text)
        return " ".join(name.lower().split()), city.lower()


def _official_cities(unit: dict, i: int) -> list[str] | str:
    """The day's cities as the official code reads them: [A, B] on 'from A to B' days, else
    the city string itself (quirk 1)."""
    current = _text(_field(unit, "current_city", i), "current_city", i)
    if "from" in current:
        a, b = from_to(current)
        if a is None:
            raise _Crash(f"day {i + 1}: cannot read 'from A to B' in current_city {current!r}")
        return [before_paren(a), before_paren(b)]
    return before_paren(current)


def _strict_cities(unit: dict) -> tuple[list[str], bool]:
    """([city] or [from, to], is_travel_day)."""
    current = unit.get("current_city")
    if not isinstance(current, str):
        return [], False
    if current.strip().lower().startswith("from "):
        a, b = from_to(current)
        if a is not None:
            return [before_paren(a).strip(), before_paren(b).strip()], True
    return [before_paren(current).strip()], False


def _route(ctx: _Context, unit: dict, value: str, i: int) -> tuple[str | None, str | None]:
    """Origin and destination of a transportation, falling back on current_city."""
    a, b = from_to(value)
    if a is None:
        a, b = from_to(_text(_field(unit, "current_city", i), "current_city", i))
    return a, b


def _strict_route(unit: dict, value: str) -> tuple[str | None, str | None]:
    """Origin and destination of a transportation; on a travel day, the day's route if the
    transportation does not say."""
    a, b = from_to(value)
    if a is None:
        cities, travel = _strict_cities(unit)
        a, b = cities if travel else (None, None)
    return (None, None) if a is None else (before_paren(a).strip(), before_paren(b).strip())


def _strict_mode(value: str) -> str | None:
    low = value.lower()
    if "flight" in low:
        return "Flight"
    if "self-driving" in low:
        return "Self-driving"
    if "taxi" in low:
        return "Taxi"
    return None


# ------------------------------------------------------------------ commonsense: official
def _official_sandbox(ctx: _Context) -> Verdict:
    db = ctx.db
    for i, unit in enumerate(ctx.units):
        value = _field(unit, "transportation", i)
        if _filled(value):
            value = _text(value, "transportation", i)
            low = value.lower()
            a, b = _route(ctx, unit, value, i)
            if "flight number" in low:
                if a is None:
                    raise _Crash(f"day {i + 1}: cannot read the route of {value!r}")
                a, b = before_paren(a), before_paren(b)
                if "Flight Number: " not in value:
                    raise _Crash(f"day {i + 1}: no 'Flight Number: ' in {value!r}")
                number = value.split("Flight Number: ")[1].split(",")[0]
                if not any(f["OriginCityName"] == a and f["DestCityName"] == b
                           for f in db.flights_numbered(number)):
                    return False, f"day {i + 1}: no flight {number} from {a} to {b}"
            elif "self-driving" in low or "taxi" in low:
                a, b = ("-", "-") if a is None else (before_paren(a), before_paren(b))
                mode = "self-driving" if "self-driving" in low else "taxi"
                if db.drive_cost(before_paren(a), before_paren(b), mode) is None:
                    return False, f"day {i + 1}: no {mode} route from {a} to {b}"
        for meal in MEALS:
            if _filled(unit.get(meal)) and not ctx.rows("restaurant", unit[meal]):
                return False, f"day {i + 1}: {meal} {unit[meal]!r} is not in the database"
        if _filled(unit.get("attraction")):
            for entry in _entries(_text(unit["attraction"], "attraction", i), strict=False):
                if not ctx.rows("attraction", entry):
                    return False, f"day {i + 1}: attraction {entry!r} is not in the database"
        if _filled(unit.get("accommodation")) and not ctx.rows("accommodation", unit["accommodation"]):
            return False, f"day {i + 1}: accommodation {unit['accommodation']!r} is not in the database"
    return True, None


def _official_current_city(ctx: _Context) -> Verdict:
    for i, unit in enumerate(ctx.units):
        cities = _official_cities(unit, i)  # a list, or a string whose characters are iterated
        value = unit.get("transportation")
        if _filled(value):
            for city in cities:
                if city not in value:
                    return False, f"day {i + 1}: transportation {value!r} does not mention {city!r}"
        for meal in MEALS:
            value = unit.get(meal)
            if _filled(value) and not any(city in value for city in cities):
                return False, f"day {i + 1}: {meal} {value!r} is not in the day's city"
        if _filled(unit.get("attraction")):
            for entry in _entries(unit["attraction"], strict=False):
                if not any(city in entry for city in cities):
                    return False, f"day {i + 1}: attraction {entry!r} is not in the day's city"
        value = unit.get("accommodation")
        if _filled(value):
            if not cities:
                raise _Crash(f"day {i + 1}: empty current_city")
            if cities[-1] not in value:
                return False, f"day {i + 1}: accommodation {value!r} does not contain {cities[-1]!r}"
    return True, None


def _official_route_cities(ctx: _Context) -> tuple[list[str] | None, str | None]:
    """The city sequence (official), or (None, reason) when day 1 leaves from elsewhere."""
    cities = []
    for i, unit in enumerate(ctx.units):
        day = _official_cities(unit, i)
        if isinstance(day, list):
            if i == 0 and day[0] != ctx.org:
                return None, f"day 1 leaves from {day[0]!r}, not from the origin {ctx.org!r}"
            cities += day
        else:
            cities.append(day)
    return cities, None


def _official_valid_sequence(cities: list[str]) -> bool:
    """Every city but the first and last stays in one run longer than one entry."""
    n = len(cities)
    if n < 3:
        return False
    seen, i = set(), 0
    while i < n:
        city, start = cities[i], i
        if city in seen and start not in (0, n - 1):
            return False
        while i < n and cities[i] == city:
            i += 1
        if i - start == 1 and 0 < start < n - 1:
            return False
        seen.add(city)
    return True


def _official_city_route(ctx: _Context) -> Verdict:
    cities, reason = _official_route_cities(ctx)
    if cities is None:
        return False, reason
    if not cities:
        raise _Crash("no days to read")
    if cities[0] != cities[-1]:
        return False, f"the trip is not a closed circle ({cities[0]} ... {cities[-1]})"
    if not _official_valid_sequence(cities):
        return False, f"the city sequence {' -> '.join(cities)} is invalid"
    for k, city in enumerate(cities):
        if city not in ctx.db.cities:
            return False, f"{city!r} is not a known city"
        if 0 < k < len(cities) - 1 and ctx.days > 3 and ctx.db.cities[city] != ctx.query["dest"]:
            return False, f"{city} is not in {ctx.query['dest']}"
    return True, None


def _official_restaurants(ctx: _Context) -> Verdict:
    seen = []  # a list, as the official code has: a non-text value (a list) is compared, not hashed
    for i, unit in enumerate(ctx.units):
        for meal in MEALS:
            value = unit.get(meal)
            if _filled(value):
                if value in seen:
                    return False, f"day {i + 1}: {meal} {value!r} is repeated"
                seen.append(value)
    return True, None


def _official_attractions(ctx: _Context) -> Verdict:
    seen = set()
    for i, unit in enumerate(ctx.units):
        if _filled(unit.get("attraction")):
            for entry in _entries(unit["attraction"], strict=False):
                if entry in seen:
                    return False, f"day {i + 1}: attraction {entry!r} is repeated"
                seen.add(entry)
    return True, None


def _official_transportation(ctx: _Context) -> Verdict:
    first = _field(ctx.plan[0], "transportation", 0)
    if not _filled(first):
        return False, "day 1 has no transportation"  # quirk 7
    modes = {travel_mode(first)}
    for unit in ctx.units:
        if _filled(unit.get("transportation")):
            modes.add(travel_mode(unit["transportation"]))
    if "Self-driving" in modes and ("Flight" in modes or "Taxi" in modes):
        return False, f"self-driving mixed with {'a flight' if 'Flight' in modes else 'a taxi'}"
    return True, None


def _official_complete(ctx: _Context) -> Verdict:
    days = 0
    for i, unit in enumerate(ctx.units):
        if unit != {} and _field(unit, "current_city", i) != NOT_NEEDED:
            days += 1
    if days != ctx.days:
        return False, f"{days} days filled, the query has {ctx.days}"
    cities, reason = _official_route_cities(ctx)
    if cities is None:
        return False, reason
    visited = set(cities) - {ctx.org}
    if len(visited) != ctx.query["visiting_city_number"]:
        return False, f"{len(visited)} cities visited, the query asks for {ctx.query['visiting_city_number']}"
    filled = 0
    for i, unit in enumerate(ctx.units):
        for key in ACTIVITIES:
            if key not in unit:
                return False, f"day {i + 1}: no {key!r}"
        current = unit["current_city"]
        travel = "from " in current
        if (travel or "to " in current) and unit["transportation"] in ("", "-"):
            return False, f"day {i + 1}: a travel day without transportation"
        if not travel and " to " not in current and unit["attraction"] in ("", "-"):
            return False, f"day {i + 1}: no attraction"
        if i != ctx.days - 1 and unit["accommodation"] in ("", "-"):
            return False, f"day {i + 1}: no accommodation"
        if not travel and any(unit[m] in ("", "-") for m in MEALS):
            return False, f"day {i + 1}: a meal is missing"
        filled += sum(1 for v in unit.values() if _filled(v))  # quirk 8: every key counts
    if filled / (6 * ctx.days) < 0.5:
        return False, f"more than half of the information is missing ({filled}/{6 * ctx.days})"
    return True, None


def _official_min_nights(ctx: _Context) -> Verdict:
    stays = []
    for i, unit in enumerate(ctx.units):
        if "accommodation" not in unit:
            return False, f"day {i + 1}: no 'accommodation'"
        stays.append(unit["accommodation"])
    for value, nights in _runs(stays):
        if value not in ("-", ""):
            rows = ctx.rows("accommodation", value)
            if len(rows) == 1 and nights < rows[0]["minimum nights"]:  # quirk 4
                return False, (f"{value!r}: {nights} night(s), its minimum is "
                               f"{int(rows[0]['minimum nights'])}")
    return True, None


def _runs(values: list) -> list[tuple[object, int]]:
    """[a, a, b] -> [(a, 2), (b, 1)]"""
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return [(v, n) for v, n in out]


# ------------------------------------------------------------------ commonsense: strict
def _strict_sandbox(ctx: _Context) -> Verdict:
    db, dates = ctx.db, ctx.query.get("date") or []
    for i, unit in enumerate(ctx.units):
        value = unit.get("transportation")
        if _filled(value):
            mode, (a, b) = _strict_mode(value), _strict_route(unit, value)
            if mode is None:
                return False, f"day {i + 1}: unknown transportation {value!r}"
            if a is None:
                return False, f"day {i + 1}: cannot read the route of {value!r}"
            if mode == "Flight":
                m = _FLIGHT_NUMBER.search(value)
                if not m:
                    return False, f"day {i + 1}: no flight number in {value!r}"
                date = dates[i] if i < len(dates) else None
                number = m.group(1)
                flights = [f for f in db.flights_numbered(number)
                           if f["OriginCityName"] == a and f["DestCityName"] == b]
                if not flights:
                    return False, f"day {i + 1}: no flight {number} from {a} to {b}"
                if date is not None and not any(f["FlightDate"] == date for f in flights):
                    return False, f"day {i + 1}: flight {number} does not fly on {date}"
            elif db.drive_cost(a, b, mode.lower()) is None:
                return False, f"day {i + 1}: no {mode.lower()} route from {a} to {b}"
        for meal in MEALS:
            if _filled(unit.get(meal)) and not ctx.rows("restaurant", unit[meal]):
                return False, f"day {i + 1}: {meal} {unit[meal]!r} is not in the database"
        if _filled(unit.get("attraction")):
            for entry in _entries(unit["attraction"], strict=True):
                if not ctx.rows("attraction", entry):
                    return False, f"day {i + 1}: attraction {entry!r} is not in the database"
        if _filled(unit.get("accommodation")) and not ctx.rows("accommodation", unit["accommodation"]):
            return False, f"day {i + 1}: accommodation {unit['accommodation']!r} is not in the database"
    return True, None


def _strict_current_city(ctx: _Context) -> Verdict:
    for i, unit in enumerate(ctx.units):
        cities, travel = _strict_cities(unit)
        if not cities:
            return False, f"day {i + 1}: no current_city"
        value = unit.get("transportation")
        if _filled(value):
            if not travel:
                return False, f"day {i + 1}: transportation {value!r} on a day without travel"
            a, b = from_to(value)
            route = (before_paren(a).strip(), before_paren(b).strip()) if a is not None else None
            if route is not None and list(route) != cities:
                return False, f"day {i + 1}: transportation goes {route[0]} -> {route[1]}, " \
                              f"the day {cities[0]} -> {cities[1]}"
        for meal in MEALS:
            value = unit.get(meal)
            if _filled(value) and name_city(value)[1] not in cities:
                return False, f"day {i + 1}: {meal} {value!r} is not in {' or '.join(cities)}"
        if _filled(unit.get("attraction")):
            for entry in _entries(unit["attraction"], strict=True):
                if name_city(entry)[1] not in cities:
                    return False, f"day {i + 1}: attraction {entry!r} is not in {' or '.join(cities)}"
        value = unit.get("accommodation")
        if _filled(value) and name_city(value)[1] != cities[-1]:
            return False, f"day {i + 1}: accommodation {value!r} is not in {cities[-1]}"
    return True, None


def _strict_city_route(ctx: _Context) -> Verdict:
    db, org, dest = ctx.db, ctx.org, ctx.query["dest"]
    days = [_strict_cities(u) for u in ctx.units]
    for i, (cities, _) in enumerate(days):
        if not cities:
            return False, f"day {i + 1}: no current_city"
    if not days or not days[0][1] or days[0][0][0] != org:
        return False, f"day 1 must travel from the origin {org}"
    if not days[-1][1] or days[-1][0][-1] != org:
        return False, f"the last day must travel back to {org}"
    for i in range(1, len(days)):
        if days[i][0][0] != days[i - 1][0][-1]:
            return False, f"day {i + 1} starts in {days[i][0][0]}, day {i} ended in {days[i - 1][0][-1]}"
    stops = [c for c, _ in _runs([c for cities, _ in days for c in cities])]
    middle = stops[1:-1]
    one_city = ctx.query.get("visiting_city_number", 1) == 1 and dest in db.cities
    for city in middle:
        if city not in db.cities:
            return False, f"{city!r} is not a known city"
        if city == org:
            return False, f"the trip passes through the origin {org} midway"
        if (city != dest) if one_city else (db.cities[city] != dest):
            return False, f"{city} is not in {dest}"
    if len(set(middle)) != len(middle):
        return False, f"a city is visited twice: {' -> '.join(stops)}"
    return True, None


def _strict_restaurants(ctx: _Context) -> Verdict:
    seen = set()
    for i, unit in enumerate(ctx.units):
        for meal in MEALS:
            value = unit.get(meal)
            if _filled(value):
                key = ctx.entity("restaurant", value)
                if key in seen:
                    return False, f"day {i + 1}: {meal} {value!r} is repeated"
                seen.add(key)
    return True, None


def _strict_attractions(ctx: _Context) -> Verdict:
    seen = set()
    for i, unit in enumerate(ctx.units):
        if _filled(unit.get("attraction")):
            for entry in _entries(unit["attraction"], strict=True):
                key = ctx.entity("attraction", entry)
                if key in seen:
                    return False, f"day {i + 1}: attraction {entry!r} is repeated"
                seen.add(key)
    return True, None


def _strict_transportation(ctx: _Context) -> Verdict:
    modes = {_strict_mode(u["transportation"]) for u in ctx.units if _filled(u.get("transportation"))}
    if "Self-driving" in modes and ("Flight" in modes or "Taxi" in modes):
        return False, f"self-driving mixed with {'a flight' if 'Flight' in modes else 'a taxi'}"
    return True, None


def _strict_complete(ctx: _Context) -> Verdict:
    records = [u for u in ctx.plan if u]
    if len(records) != ctx.days:
        return False, f"{len(records)} days in the plan, the query has {ctx.days}"
    for i, unit in enumerate(records):
        for key in FIELDS:
            if key not in unit:
                return False, f"day {i + 1}: no {key!r}"
    days = [_strict_cities(u) for u in records]
    visited = {c for cities, _ in days for c in cities} - {ctx.org}
    if len(visited) != ctx.query["visiting_city_number"]:
        return False, f"{len(visited)} cities visited, the query asks for {ctx.query['visiting_city_number']}"
    filled = 0
    for i, (unit, (_, travel)) in enumerate(zip(records, days)):
        if travel and not _filled(unit["transportation"]):
            return False, f"day {i + 1}: a travel day without transportation"
        if not travel and not _filled(unit["attraction"]):
            return False, f"day {i + 1}: no attraction"
        if i != ctx.days - 1 and not _filled(unit["accommodation"]):
            return False, f"day {i + 1}: no accommodation"
        if not travel and not all(_filled(unit[m]) for m in MEALS):
            return False, f"day {i + 1}: a meal is missing"
        filled += sum(1 for k in ACTIVITIES if _filled(unit[k]))
    if filled / (6 * ctx.days) < 0.5:
        return False, f"more than half of the information is missing ({filled}/{6 * ctx.days})"
    return True, None


def _strict_min_nights(ctx: _Context) -> Verdict:
    stays = [ctx.entity("accommodation", u["accommodation"]) if _filled(u.get("accommodation")) else None
             for u in ctx.units]
    i = 0
    for key, nights in _runs(stays):
        if key is not None:
            value = ctx.units[i]["accommodation"]
            rows = ctx.rows("accommodation", value)
            if rows and nights < rows[0]["minimum nights"]:
                return False, f"{value!r}: {nights} night(s), its minimum is {int(rows[0]['minimum nights'])}"
        i += nights
    return True, None


# ------------------------------------------------------------------ hard constraints
def _trip_cost(ctx: _Context) -> float:
    """Total cost: flights x people, drives x cars/taxis, meals x people, nights x rooms."""
    total = 0
    for i, unit in enumerate(ctx.units):
        value = _field(unit, "transportation", i)
        if _filled(value):
            total += (_strict_transport_cost if ctx.strict else _official_transport_cost)(ctx, unit, value, i)
        for meal in MEALS:
            if _filled(_field(unit, meal, i)):
                rows = ctx.rows("restaurant", unit[meal])
                if rows:
                    total += rows[0]["Average Cost"] * ctx.people
        if _filled(_field(unit, "accommodation", i)):
            rows = ctx.rows("accommodation", unit["accommodation"])
            if rows:
                total += rows[0]["price"] * math.ceil(ctx.people / rows[0]["maximum occupancy"])
    return total


def _budget(ctx: _Context) -> Verdict:
    ctx.cost = cost = _trip_cost(ctx)
    budget = ctx.query["budget"]
    return (True, None) if cost <= budget else (False, f"the plan costs {cost:g}, over the budget of {budget}")


def _drive_cost(ctx: _Context, a: str, b: str, mode: str, i: int) -> int:
    """Cost of the cars (self-driving, 5 people each) or taxis (4 each) for the group."""
    cost = ctx.db.drive_cost(a, b, mode)
    if cost is None:
        raise _Crash(f"day {i + 1}: no {mode} route from {a} to {b} to price")
    return cost * math.ceil(ctx.people / (5 if mode == "self-driving" else 4))


def _official_transport_cost(ctx: _Context, unit: dict, value: str, i: int) -> float:
    a, b = _route(ctx, unit, _text(value, "transportation", i), i)
    low = value.lower()
    if a is None:
        return 0
    if "flight number" in low:
        if "Flight Number: " not in value:
            raise _Crash(f"day {i + 1}: no 'Flight Number: ' in {value!r}")
        rows = ctx.db.flights_numbered(value.split("Flight Number: ")[1].split(",")[0])  # quirk 9
        return rows[0]["Price"] * ctx.people if rows else 0
    if "self-driving" in low or "taxi" in low:
        mode = "self-driving" if "self-driving" in low else "taxi"
        return _drive_cost(ctx, before_paren(a), before_paren(b), mode, i)
    return 0


def _strict_transport_cost(ctx: _Context, unit: dict, value: str, i: int) -> float:
    mode, (a, b) = _strict_mode(value), _strict_route(unit, value)
    if mode == "Flight":
        dates = ctx.query.get("date") or []
        flights = [f for f in ctx.db.flights_numbered(_FLIGHT_NUMBER.search(value).group(1))
                   if f["OriginCityName"] == a and f["DestCityName"] == b]
        flights = [f for f in flights if i < len(dates) and f["FlightDate"] == dates[i]] or flights
        return flights[0]["Price"] * ctx.people
    return _drive_cost(ctx, a, b, mode.lower(), i)


def _room_rule(ctx: _Context) -> Verdict:
    rule = ctx.local.get("house rule")
    if rule is None:
        return None, None
    banned = (V1_HOUSE_RULES if ctx.mode == "official_v1" else HOUSE_RULES).get(rule)
    for i, unit in enumerate(ctx.units):
        value = _field(unit, "accommodation", i)
        if _filled(value):
            rows = ctx.rows("accommodation", value)
            if rows and banned and banned in str(rows[0]["house_rules"]):
                return False, f"day {i + 1}: {value!r} does not allow {rule}"
    return True, None


def _room_type(ctx: _Context) -> Verdict:
    wanted = ctx.local.get("room type")
    if wanted is None:
        return None, None
    for i, unit in enumerate(ctx.units):
        value = _field(unit, "accommodation", i)
        if _filled(value):
            rows = ctx.rows("accommodation", value)
            if not rows:
                continue
            kind = rows[0]["room type"]
            if wanted == "not shared room":
                bad = kind == "Shared room"
            else:
                bad = wanted in ROOM_TYPES and kind != ROOM_TYPES[wanted]
            if bad:
                return False, f"day {i + 1}: {value!r} is a {kind}, the query asks for: {wanted}"
    return True, None


def _cuisine(ctx: _Context) -> Verdict:
    wanted = ctx.local.get("cuisine")
    if not wanted:
        return None, None
    found = set()
    for i, unit in enumerate(ctx.units):
        for meal in MEALS:
            value = _field(unit, meal, i)
            if not _filled(value):
                continue
            if name_city(value)[1] == ctx.org:
                if ctx.strict:
                    continue
                break  # quirk 6: skips the rest of the day
            rows = ctx.rows("restaurant", value)
            if rows:
                cuisines = str(rows[0]["Cuisines"])
                if ctx.strict:  # whole names from the comma list, not substrings
                    cuisines = [c.strip() for c in cuisines.split(",")]
                found.update(c for c in wanted if c in cuisines)
    missing = [c for c in wanted if c not in found]
    if missing:
        return False, f"no {missing[0]} meal"
    if len(set(wanted)) != len(wanted) and not ctx.strict:  # quirk 15
        raise _Crash(f"duplicate cuisines {wanted}, all served: the official check returns None")
    return True, None


def _transport_rule(ctx: _Context) -> Verdict:
    rule = ctx.local.get("transportation")
    if rule is None:
        return None, None
    banned = {"no flight": "Flight", "no self-driving": "Self-driving"}.get(rule)
    for i, unit in enumerate(ctx.units):
        value = _field(unit, "transportation", i)
        if banned and _filled(value):
            used = _strict_mode(value) == banned if ctx.strict else banned in value  # quirk 12
            if used:
                return False, f"day {i + 1}: {value!r} breaks '{rule}'"
    return True, None


# ------------------------------------------------------------------ results and metrics
CHECKS = {
    "official": {"within_sandbox": _official_sandbox, "complete_information": _official_complete,
                 "within_current_city": _official_current_city,
                 "reasonable_city_route": _official_city_route,
                 "diverse_restaurants": _official_restaurants,
                 "diverse_attractions": _official_attractions,
                 "non_conflicting_transportation": _official_transportation,
                 "minimum_nights": _official_min_nights},
    "strict": {"within_sandbox": _strict_sandbox, "complete_information": _strict_complete,
               "within_current_city": _strict_current_city,
               "reasonable_city_route": _strict_city_route,
               "diverse_restaurants": _strict_restaurants,
               "diverse_attractions": _strict_attractions,
               "non_conflicting_transportation": _strict_transportation,
               "minimum_nights": _strict_min_nights},
}
HARD_CHECKS = {"budget": _budget, "room_rule": _room_rule, "room_type": _room_type, "cuisine": _cuisine,
               "transportation": _transport_rule}


@dataclass
class PlanResult:
    delivered: bool
    commonsense: dict[str, Verdict]  # name -> (passed, reason); empty if not delivered
    hard: dict[str, Verdict] | None  # None when not judged; unset constraint -> (None, None)
    cost: float | None
    hard_applies: tuple[str, ...] = ("budget",)  # budget + the local constraints the query sets
    mode: str = "official"
    official_crash: str | None = None  # official modes: why the official eval.py would raise on this plan

    @property
    def commonsense_pass(self) -> bool:
        return self.delivered and all(v[0] is not False for v in self.commonsense.values())

    @property
    def hard_pass(self) -> bool:
        return self.hard is not None and all(v[0] is not False for v in self.hard.values())

    @property
    def final_pass(self) -> bool:
        return self.commonsense_pass and self.hard_pass

    def metrics(self) -> dict[str, float]:
        """Per-episode numbers for rewards (0/1 floats and fractions)."""
        cs = {name: float(self.commonsense.get(name, (False,))[0] is True) for name in COMMONSENSE}
        hard = {name: float(self.hard is not None and self.hard[name][0] is True) for name in self.hard_applies}
        out = {"delivered": float(self.delivered),
               "commonsense_micro": sum(cs.values()) / len(COMMONSENSE),
               "hard_micro": sum(hard.values()) / len(self.hard_applies),
               "commonsense_macro": float(self.commonsense_pass),
               "hard_macro": float(self.hard_pass),
               "final_pass": float(self.final_pass)}
        out.update({f"cs_{k}": v for k, v in cs.items()})
        out.update({f"hard_{k}": v for k, v in hard.items()})
        if self.mode in OFFICIAL_MODES:
            out["official_would_crash"] = float(self.official_crash is not None)
        return out


def _guard(check, ctx: _Context) -> Verdict:
    """Run one check; where the official code would raise, fail with the reason (and, in
    the official modes, note that the official eval.py dies on this plan)."""
    try:
        return check(ctx)
    except Exception as e:  # malformed records: never let one check take the others down
        reason = (f"{e} (the official code raises here)" if isinstance(e, _Crash)
                  else f"cannot evaluate: {type(e).__name__}: {e}")
        if not ctx.strict:  # official modes do what the official code does up to where it raises
            ctx.crashes.append(reason)
        return False, reason


def evaluate_plan(db: Database, query: dict, plan: list[dict] | None, mode: str = "official") -> PlanResult:
    """Judge one plan (a list of day records, e.g. from parse_plan) against one query."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    applies = ("budget",) + tuple(k for k in HARD[1:] if (query.get("local_constraint") or {})
                                  .get(LOCAL_KEYS[k]) is not None)
    if not plan:
        return PlanResult(False, {}, None, None, applies, mode)
    if not isinstance(plan, list):
        raise ValueError(f"plan must be a list of day records, got {type(plan).__name__}")
    ctx = _Context(db, query, plan, mode)
    checks = CHECKS["strict" if ctx.strict else "official"]
    commonsense = {name: _guard(checks[name], ctx) for name in COMMONSENSE}
    if not (commonsense["complete_information"][0] and commonsense["within_sandbox"][0]):
        return PlanResult(True, commonsense, None, None, applies, mode, _first(ctx.crashes))
    hard = {name: _guard(HARD_CHECKS[name], ctx) for name in HARD}
    return PlanResult(True, commonsense, hard, ctx.cost, applies, mode, _first(ctx.crashes))


def _first(reasons: list[str]) -> str | None:
    return reasons[0] if reasons else None


def malformed_result(db: Database, query: dict, error: PlanError, mode: str = "official") -> PlanResult:
    """A plan Questline rejects as malformed: not delivered; in the official modes, flagged
    when the official evaluator, which takes any list of records, would raise on its records."""
    result = evaluate_plan(db, query, None, mode)
    if mode in OFFICIAL_MODES and error.records:
        result.official_crash = evaluate_plan(db, query, error.records, mode).official_crash
    return result


def local_constraint_count(query: dict) -> int:
    """Local constraints the query sets (eval.py counts those that are not None)."""
    local = query.get("local_constraint") or {}
    return sum(local.get(key) is not None for key in LOCAL_KEYS.values())


def official_metrics(queries: list[dict], results: list[PlanResult]) -> dict[str, float]:
    """eval.py's arithmetic. Micro: passed checks over 8N (commonsense) or over N + the local
    constraints of all queries (hard). Macro: queries passing all their checks over N.
    With results of an official mode, also the share of plans on which the official eval.py
    raises (one such plan and it reports nothing for the whole file)."""
    if len(queries) != len(results):
        raise ValueError(f"{len(queries)} queries but {len(results)} results")
    n = len(queries)
    if n == 0:
        return {k: 0.0 for k in METRIC_NAMES if k != "official_would_crash"}
    cs_passed = sum(v[0] is True for r in results if r.delivered for v in r.commonsense.values())
    hard_passed = sum(v[0] is True for r in results if r.hard is not None for v in r.hard.values())
    hard_total = n + sum(local_constraint_count(q) for q in queries)
    return {"delivery_rate": sum(r.delivered for r in results) / n,
            "commonsense_micro": cs_passed / (len(COMMONSENSE) * n),
            "commonsense_macro": sum(r.commonsense_pass for r in results) / n,
            "hard_micro": hard_passed / hard_total,
            "hard_macro": sum(r.hard_pass for r in results) / n,
            "final_pass": sum(r.final_pass for r in results) / n,
            **({"official_would_crash": sum(r.official_crash is not None for r in results) / n}
               if any(r.mode in OFFICIAL_MODES for r in results) else {})}


def metrics_table(metrics: dict[str, float], title: str = "") -> str:
    """The metrics under their official names, as percentages with one decimal."""
    rows = [(METRIC_NAMES.get(k, k), f"{100 * v:.1f}%") for k, v in metrics.items()]
    width = max(len(name) for name, _ in rows) if rows else 0
    lines = [title] if title else []
    lines += [f"{name:<{width}}  {value:>6}" for name, value in rows]
    return "\n".join(lines)
