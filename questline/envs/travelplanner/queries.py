"""TravelPlanner query synthesis, splits and import/export in the official formats.

A query follows the published rules: a 3-day trip goes to one city of another state; a
5/7-day trip goes to a state with more than 3 cities and visits 2/3 of them. easy: one
person, no local constraint; medium: 2-8 people and exactly one of house rule / cuisine
(two cuisines) / room type; hard: 2-8 people and three of house rule / cuisine / room
type / transportation.

Budget (the published synthesis takes the route's lowest / average / highest prices;
this is our formula). For a price tier (lowest, average or highest) the per-person base is
    tier(flight or self-driving price per person, per leg) summed over the legs
  + 2 nights x tier(accommodation price per night, a room to oneself) per city
  + 3 meals x days x tier(restaurant cost)
over the candidate cities (the destination, or every city of the destination state), and
    tier budget = base x people x {easy 1, medium 0.75, hard 0.5}.
The query's budget is round_100(lowest + u x (average - lowest)), u ~ U(0.3, 1.3):
calibrated on the 45 official training queries, whose budgets sit at u = 0.12-1.6
(10/50/90%: 0.4/0.75/1.2) when this formula is applied to their reference information
(the highest tier lies far above every official budget, so it is not used).

Every query is certified like the published pipeline does (enough transport, hotels,
restaurants; budget reachable) by the oracle finding a passing plan; medium and hard
queries must also bind: the cheapest plan that ignores the local constraints must break
at least one of them. A draw that fails is replaced by the next one and the reason is
counted in the returned stats.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import random
import statistics
from collections import Counter
from datetime import date
from pathlib import Path

from questline.envs.travelplanner.database import Database
from questline.envs.travelplanner.evaluate import evaluate_plan
from questline.envs.travelplanner.oracle import (
    cheapest_trip,
    greedy_plan,
    violated_local_constraints,
)
from questline.envs.travelplanner.world import QUERY_CUISINES

LEVELS = ("easy", "medium", "hard")
HOUSE_RULES = ("parties", "smoking", "children under 10", "visitors", "pets")
ROOM_TYPES = ("shared room", "not shared room", "private room", "entire room")
TRANSPORT = ("no flight", "no self-driving")
LOCAL_KEYS = ("house rule", "cuisine", "room type", "transportation")
LEVEL_FACTOR = {"easy": 1.0, "medium": 0.75, "hard": 0.5}
TIERS = ("lowest", "average", "highest")
BUDGET_POSITION = (0.3, 1.3)  # u: where the budget sits from the lowest (0) to the average (1) tier
CITIES_VISITED = {3: 1, 5: 2, 7: 3}
COLUMNS = ("org", "dest", "days", "visiting_city_number", "date", "people_number", "local_constraint",
           "budget", "query", "level")


# ------------------------------------------------------------------ drawing one query
def tier_value(values: list[float], tier: str) -> float:
    if not values:
        return 0.0
    return {"lowest": min, "average": statistics.fmean, "highest": max}[tier](values)


def no_constraint() -> dict:
    return {key: None for key in LOCAL_KEYS}


def draw_local_constraint(rng: random.Random, level: str, people: int) -> dict:
    constraint = no_constraint()
    if level == "easy":
        return constraint
    keys = [rng.choice(LOCAL_KEYS[:3])] if level == "medium" else rng.sample(LOCAL_KEYS, 3)
    for key in keys:
        if key == "house rule":
            constraint[key] = rng.choice(HOUSE_RULES)
        elif key == "cuisine":
            constraint[key] = rng.sample(QUERY_CUISINES, 2)
        elif key == "room type":
            constraint[key] = rng.choice(ROOM_TYPES if people <= 2 else ROOM_TYPES[1:])
        else:
            constraint[key] = rng.choice(TRANSPORT)
    return constraint


def world_dates(db: Database) -> list[str]:
    dates = sorted({f["FlightDate"] for f in db.flights})
    return dates or [f"2022-03-{d:02d}" for d in range(1, 32)]


def consecutive(first: str, days: int) -> list[str]:
    start = date.fromisoformat(first).toordinal()
    return [date.fromordinal(start + i).isoformat() for i in range(days)]


def reachable_pairs(db: Database) -> set[tuple[str, str]]:
    """(a, b) with a flight on some date or a drive of less than a day."""
    pairs = {(f["OriginCityName"], f["DestCityName"]) for f in db.flights}
    return pairs | {key for key in db.distances if db.drive_cost(*key, "taxi") is not None}


def draw_route(rng: random.Random, db: Database, days: int, reachable: set) -> tuple[str, str] | None:
    """(org, dest): dest a city of another state (3 days) or a state with > 3 cities, that
    can be reached from org and left for org (the official matrix covers few pairs)."""
    states = db.states()
    org = rng.choice(sorted(db.cities))
    both_ways = lambda c: (org, c) in reachable and (c, org) in reachable  # noqa: E731
    if days == 3:
        options = [c for c in sorted(db.cities) if db.cities[c] != db.cities[org] and both_ways(c)]
    else:
        options = [s for s in sorted(states) if len(states[s]) > 3 and s != db.cities[org]
                   and any((org, c) in reachable for c in states[s])
                   and any((c, org) in reachable for c in states[s])]
    return (org, rng.choice(options)) if options else None


def budget_for(db: Database, org: str, dest: str, dates: list[str], people: int, level: str,
               tier: str) -> float:
    """Per-person base at a price tier x people x level factor; see the module docstring."""
    k = CITIES_VISITED[len(dates)]
    cities = [dest] if k == 1 else db.cities_in(dest)  # 'New York' is a city and a state

    def leg_prices(orgs, dests, day):
        prices = []
        for a in orgs:
            for b in dests:
                if a != b:
                    prices += [f["Price"] for f in db.flights_on(a, b, day)]
                    drive = db.drive_cost(a, b, "self-driving")
                    if drive is not None:
                        prices.append(drive / min(people, 5))
        return prices

    transport = tier_value(leg_prices([org], cities, dates[0]), tier)
    transport += sum(tier_value(leg_prices(cities, cities, dates[2 * i]), tier) for i in range(1, k))
    transport += tier_value(leg_prices(cities, [org], dates[-1]), tier)
    stays = [r["price"] for c in cities for r in db.accommodations_in(c)]
    meals = [r["Average Cost"] for c in cities for r in db.restaurants_in(c)]
    base = transport + 2 * k * tier_value(stays, tier) + 3 * len(dates) * tier_value(meals, tier)
    return base * people * LEVEL_FACTOR[level]


def draw_budget(rng: random.Random, db: Database, org: str, dest: str, dates: list[str], people: int,
                level: str) -> int:
    low, average = (budget_for(db, org, dest, dates, people, level, t) for t in TIERS[:2])
    budget = low + rng.uniform(*BUDGET_POSITION) * (average - low)
    return max(100, int(budget / 100 + 0.5) * 100)


def draw_query(rng: random.Random, db: Database, days: int, level: str, reachable: set) -> dict | None:
    route = draw_route(rng, db, days, reachable)
    if route is None:
        return None
    org, dest = route
    available = world_dates(db)
    first = rng.choice(available[:len(available) - days + 1])
    dates = consecutive(first, days)
    people = 1 if level == "easy" else rng.randint(2, 8)
    query = {"org": org, "dest": dest, "days": days, "visiting_city_number": CITIES_VISITED[days],
             "date": dates, "people_number": people,
             "local_constraint": draw_local_constraint(rng, level, people),
             "budget": draw_budget(rng, db, org, dest, dates, people, level),
             "query": "", "level": level}
    query["query"] = describe(rng, query)
    query["idx"] = query_id(query)
    return query


# ------------------------------------------------------------------ natural language
def spoken_date(iso: str) -> str:
    d = date.fromisoformat(iso)
    suffix = "th" if 11 <= d.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    return f"{d.strftime('%B')} {d.day}{suffix}"


TEMPLATES = (
    "Please help me plan a trip from {org} to {where} spanning {days} days from {start} to {end}, {year}. "
    "The travel should be planned for {who} with a budget of ${budget:,}.",
    "Can you provide a travel plan for {who} departing from {org} to {where} for {days} days, from {start} "
    "to {end}, {year}, with a budget of ${budget:,}?",
    "Please design a travel plan departing from {org} and heading to {where} for {days} days, from {start} "
    "to {end}, {year}, for {who}, with a budget of ${budget:,}.",
    "Could you create a {days}-day itinerary for {who} from {org} to {where}, running from {start} to "
    "{end}, {year}? The total budget is ${budget:,}.",
    "I am planning a {days}-day journey from {org} to {where} between {start} and {end}, {year}, for {who}. "
    "Our budget is ${budget:,}.",
)
RULE_SENTENCES = {"parties": "have parties", "smoking": "smoke", "children under 10": "bring children under 10",
                  "visitors": "have visitors", "pets": "bring pets"}
ROOM_SENTENCES = {"shared room": "a shared room", "not shared room": "any room except a shared room",
                  "private room": "a private room", "entire room": "an entire room"}


def describe(rng: random.Random, query: dict) -> str:
    k, people = query["visiting_city_number"], query["people_number"]
    where = query["dest"] if k == 1 else f"{k} cities in {query['dest']}"
    who = "one person" if people == 1 else rng.choice((f"{people} people", f"a group of {people}"))
    text = rng.choice(TEMPLATES).format(org=query["org"], where=where, days=query["days"],
                                        start=spoken_date(query["date"][0]), end=spoken_date(query["date"][-1]),
                                        year=query["date"][0][:4], who=who, budget=query["budget"])
    lc = query["local_constraint"]
    extra = []
    if lc["house rule"]:
        extra.append(f"Our accommodations must allow us to {RULE_SENTENCES[lc['house rule']]}.")
    if lc["room type"]:
        extra.append(f"We would like to stay in {ROOM_SENTENCES[lc['room type']]}.")
    if lc["cuisine"]:
        extra.append(f"We want to try {' and '.join(lc['cuisine'])} cuisines during the trip.")
    if lc["transportation"] == "no flight":
        extra.append("We would prefer not to take any flights.")
    elif lc["transportation"] == "no self-driving":
        extra.append("We do not want to drive ourselves.")
    rng.shuffle(extra)
    return " ".join([text] + extra)


# ------------------------------------------------------------------ certification
def query_key(query: dict) -> str:
    """Content hash: the trip itself (route, dates, party, constraints), not its wording."""
    lc = dict(query["local_constraint"])
    if lc.get("cuisine"):
        lc["cuisine"] = sorted(lc["cuisine"])
    fields = [query["org"], query["dest"], query["days"], list(query["date"]), query["people_number"],
              sorted(lc.items()), query["level"]]
    return hashlib.sha1(json.dumps(fields, default=str).encode()).hexdigest()


def query_id(query: dict) -> str:
    return "tp-" + query_key(query)[:12]


def check_query(db: Database, query: dict) -> str | None:
    """None if certified, else the reason to redraw."""
    trip = cheapest_trip(db, query)
    if isinstance(trip, str):
        return trip
    if trip.cost > query["budget"]:
        return "budget"
    if query["level"] != "easy":
        greedy = greedy_plan(db, query)
        # the cheapest-everywhere plan must fail in both evaluator modes (official mode
        # never checks 'parties', so a query bound only by it would not bind there)
        if greedy is not None and (not violated_local_constraints(db, query, greedy) or any(
                evaluate_plan(db, query, greedy, mode).final_pass for mode in ("official", "strict"))):
            return "not_binding"
    return None


def generate_queries(db: Database, n: int, level: str | tuple = LEVELS, seed: int | str = 0,
                     days: tuple = (3, 5, 7), max_tries: int = 200, exclude: set | None = None
                     ) -> tuple[list[dict], dict]:
    """n certified queries. `level` and `days` may be sequences: query i gets
    days[i % len(days)] and level[(i // len(days)) % len(levels)], so a multiple of
    len(days) x len(levels) is balanced. `exclude` holds query keys to skip (other splits).
    Returns (queries, stats) with attempts and retries by reason."""
    levels = (level,) if isinstance(level, str) else tuple(level)
    for lvl in levels:
        if lvl not in LEVELS:
            raise ValueError(f"unknown level {lvl!r}; levels are {LEVELS}")
    for d in days:
        if d not in CITIES_VISITED:
            raise ValueError(f"unknown trip length {d!r}; days are {tuple(CITIES_VISITED)}")
    rng = random.Random(f"tp-queries-{seed}")
    reachable = reachable_pairs(db)
    seen = set(exclude or ())
    queries, retries = [], Counter()
    for i in range(n):
        d, lvl = days[i % len(days)], levels[(i // len(days)) % len(levels)]
        for _ in range(max_tries):
            query = draw_query(rng, db, d, lvl, reachable)
            reason = "no_destination" if query is None else (
                "duplicate" if query_key(query) in seen else check_query(db, query))
            if reason is None:
                break
            retries[reason] += 1
        else:
            raise ValueError(f"no certified {lvl} {d}-day query after {max_tries} draws "
                             f"(retries so far: {dict(retries)})")
        seen.add(query_key(query))
        queries.append(query)
    attempts = n + sum(retries.values())
    return queries, {"queries": n, "attempts": attempts, "retries": dict(retries),
                     "retry_rate": sum(retries.values()) / max(attempts, 1)}


def split_queries(db: Database, sizes: dict[str, int], level: str | tuple = LEVELS, seed: int = 0,
                  days: tuple = (3, 5, 7)) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """Disjoint splits from one world: each split draws from its own seed stream and skips
    every trip already in an earlier split (content hash)."""
    taken: set[str] = set()
    splits, stats = {}, {}
    for name, size in sizes.items():
        splits[name], stats[name] = generate_queries(db, size, level, f"{seed}/{name}", days, exclude=taken)
        taken |= {query_key(q) for q in splits[name]}
    return splits, stats


# ------------------------------------------------------------------ import / export
def normalize_query(record: dict) -> dict:
    """An official record (from jsonl or the dataset's CSV, where date and local_constraint
    are Python-literal strings) with proper types."""
    q = dict(record)
    for key in ("date", "local_constraint"):
        if isinstance(q.get(key), str):
            q[key] = ast.literal_eval(q[key])
    for key in ("days", "visiting_city_number", "people_number", "budget"):
        if q.get(key) is not None and q[key] != "":
            q[key] = int(float(q[key]))
    lc = {key: None for key in LOCAL_KEYS}
    lc.update(q.get("local_constraint") or {})
    q["local_constraint"] = lc
    return q


def save_queries(path: str | Path, queries: list[dict]) -> Path:
    """Official jsonl (one record a line) or, for a .csv or .parquet path, the dataset's CSV
    columns (the Hub's parquet conversion of osunlp/TravelPlanner has the same columns)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(COLUMNS) + (["idx"] if queries and all("idx" in q for q in queries) else [])
    rows = [{c: repr(q[c]) if c in ("date", "local_constraint") else q[c] for c in columns} for q in queries]
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".parquet":
        from questline.data.io import write_parquet
        write_parquet(path, rows)
    else:
        path.write_text("".join(json.dumps(q) + "\n" for q in queries))
    return path


def load_queries(path: str | Path) -> list[dict]:
    path = Path(path)
    if path.suffix == ".csv":
        csv.field_size_limit(2**31 - 1)  # the official CSVs carry whole reference tables
        with path.open(newline="") as f:
            return [normalize_query(row) for row in csv.DictReader(f)]
    if path.suffix == ".parquet":
        from questline.data.io import read_parquet
        return [normalize_query(row) for row in read_parquet(path)]
    return [normalize_query(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
