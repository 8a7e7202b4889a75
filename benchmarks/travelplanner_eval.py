"""TravelPlanner evaluator throughput: questline's evaluator (dict lookups through
`Database`) vs a straightforward pandas implementation of the same official checks
(DataFrames of the same database, boolean-mask lookups with `str.contains` as the official
code does; the string columns are cast once, where the official code recasts them on every
lookup, so the baseline is if anything faster than the original).

Database: the official database directory plus the flights of the 45 training reference
infos. Plans: the 45 annotated training plans and perturbed copies of them (a swapped or
repeated restaurant, a dropped field, an unknown hotel, a wrong flight number, a last
attraction without its ';', a detour, a lower budget...), so verdicts are mixed. Both
implementations must agree on every check of every plan (asserted). Without the official
data, a small synthetic world built here stands in.

    python benchmarks/travelplanner_eval.py           # 45 plans + 3 perturbed copies each
    python benchmarks/travelplanner_eval.py --quick   # 45 plans + 1 copy each, < 30 s
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from questline.envs.travelplanner.database import Database  # noqa: E402
from questline.envs.travelplanner.evaluate import (  # noqa: E402
    COMMONSENSE,
    HARD,
    evaluate_plan,
    metrics_table,
    official_metrics,
    parse_plan,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIRS = [ROOT.parent / "shared/data/travelplanner-official", Path("/work/shared/data/travelplanner-official")]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=3, help="perturbed copies of each annotated plan")
    p.add_argument("--min-seconds", type=float, default=1.0, help="repeat our evaluator at least this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1 perturbed copy per plan")
    args = p.parse_args()
    if args.quick:
        args.copies, args.min_seconds = 1, 0.5
    return args


# ------------------------------------------------------------------ the pandas baseline
FROM_TO = re.compile(r"from\s+(.+?)\s+to\s+([^,]+)(?=[,\s]|$)")
NAME_CITY = re.compile(r"(.*?),\s*([^,]+)(\(\w[\w\s]*\))?$")
MEALS = ("breakfast", "lunch", "dinner")


def extract_from_to(text):
    m = FROM_TO.search(text)
    return m.groups() if m else (None, None)


def strip_paren(text):
    m = re.search(r"^(.*?)\([^)]*\)", text)
    return m.group(1) if m else text


def split_name_city(text):
    m = NAME_CITY.search(text)
    return (m.group(1).strip(), strip_paren(m.group(2).strip()).strip()) if m else ("-", "-")


def given(unit, key):
    return key in unit and unit[key] and unit[key] != "-"


class PandasOfficial:
    """The official checks, written plainly over DataFrames (the reference for speed and
    for verdicts: both implementations must agree)."""

    def __init__(self, db: Database):
        self.flights = pd.DataFrame(db.flights)
        self.hotels = pd.DataFrame(db.accommodations)
        self.restaurants = pd.DataFrame(db.restaurants)
        self.attractions = pd.DataFrame(db.attractions)
        self.distances = pd.DataFrame([{"origin": o, "destination": d, "duration": v.get("duration"),
                                        "distance": v.get("distance")} for (o, d), v in db.distances.items()])
        for frame, column in ((self.hotels, "NAME"), (self.restaurants, "Name"), (self.attractions, "Name")):
            frame["name_str"] = frame[column].astype(str)
        self.city_state = dict(db.cities)

    def tool(self, name: str, args: list[str]) -> str:
        """The official tool APIs: boolean-mask lookups rendered with to_string."""
        if name == "FlightSearch":
            f = self.flights
            rows = f[(f["OriginCityName"] == args[0]) & (f["DestCityName"] == args[1]) & (f["FlightDate"] == args[2])]
        elif name == "GoogleDistanceMatrix":
            cost = self.drive_cost(args[0], args[1], args[2])
            return f"{args[2]}, from {args[0]} to {args[1]}, cost: {cost}"
        else:
            frame, column = {"AccommodationSearch": (self.hotels, "city"), "RestaurantSearch": (self.restaurants, "City"),
                             "AttractionSearch": (self.attractions, "City")}[name]
            rows = frame[frame[column] == args[0]].drop(columns=["name_str"])
        return rows.to_string(index=False) if len(rows) else "There is no result."

    # lookups
    def match(self, frame, city_column, text):
        name, city = split_name_city(text)
        return frame[frame["name_str"].str.contains(re.escape(name)) & (frame[city_column] == city)]

    def restaurant(self, text):
        return self.match(self.restaurants, "City", text)

    def hotel(self, text):
        return self.match(self.hotels, "city", text)

    def drive_cost(self, origin, dest, mode):
        origin, dest = strip_paren(origin), strip_paren(dest)
        rows = self.distances[(self.distances["origin"] == origin) & (self.distances["destination"] == dest)]
        if len(rows) == 0:
            return None
        duration, distance = rows["duration"].values[0], rows["distance"].values[0]
        if not isinstance(duration, str) or not isinstance(distance, str) or "day" in duration:
            return None
        km = float(distance.replace("km", "").replace(",", ""))
        return int(km * 0.05) if "driving" in mode else int(km)

    # commonsense
    def day_cities(self, text):
        if "from" in text:
            a, b = extract_from_to(text)
            return [strip_paren(a), strip_paren(b)]
        return strip_paren(text)

    def city_list(self, q, plan):
        cities = []
        for i, unit in enumerate(plan[:q["days"]]):
            got = self.day_cities(unit["current_city"])
            if isinstance(got, list):
                if i == 0 and got[0] != q["org"]:
                    return None
                cities += got
            else:
                cities.append(got)
        return cities

    def reasonable_city_route(self, q, plan):
        cities = self.city_list(q, plan)
        if cities is None or cities[0] != cities[-1] or len(cities) < 3:
            return False
        seen, i, n = set(), 0, len(cities)
        while i < n:
            city, start = cities[i], i
            if city in seen and start not in (0, n - 1):
                return False
            while i < n and cities[i] == city:
                i += 1
            if i - start == 1 and 0 < start < n - 1:
                return False
            seen.add(city)
        for k, city in enumerate(cities):
            if city not in self.city_state:
                return False
            if k not in (0, n - 1) and q["days"] > 3 and self.city_state[city] != q["dest"]:
                return False
        return True

    def diverse_restaurants(self, q, plan):
        seen = []
        for unit in plan[:q["days"]]:
            for meal in MEALS:
                if given(unit, meal):
                    if unit[meal] in seen:
                        return False
                    seen.append(unit[meal])
        return True

    def diverse_attractions(self, q, plan):
        seen = []
        for unit in plan[:q["days"]]:
            if given(unit, "attraction"):
                for entry in unit["attraction"].split(";")[:-1]:
                    if entry in seen:
                        return False
                    seen.append(entry)
        return True

    @staticmethod
    def mode_of(text):
        low = text.lower()
        return "Taxi" if "taxi" in low else "Self-driving" if "self-driving" in low else \
            "Flight" if "flight" in low else None

    def non_conflicting_transportation(self, q, plan):
        if not given(plan[0], "transportation"):
            return False
        modes = [self.mode_of(plan[0]["transportation"])]
        modes += [self.mode_of(u["transportation"]) for u in plan[:q["days"]] if given(u, "transportation")]
        return not ("Self-driving" in modes and ("Flight" in modes or "Taxi" in modes))

    def within_current_city(self, q, plan):
        for unit in plan[:q["days"]]:
            cities = self.day_cities(unit["current_city"])
            if given(unit, "transportation") and any(c not in unit["transportation"] for c in cities):
                return False
            for meal in MEALS:
                if given(unit, meal) and not any(c in unit[meal] for c in cities):
                    return False
            if given(unit, "attraction"):
                for entry in unit["attraction"].split(";")[:-1]:
                    if not any(c in entry for c in cities):
                        return False
            if given(unit, "accommodation") and cities[-1] not in unit["accommodation"]:
                return False
        return True

    def within_sandbox(self, q, plan):
        for unit in plan[:q["days"]]:
            if unit["transportation"] and unit["transportation"] != "-":
                value = unit["transportation"]
                a, b = extract_from_to(value)
                if a is None:
                    a, b = extract_from_to(unit["current_city"])
                if "flight number" in value.lower():
                    a, b = strip_paren(a), strip_paren(b)
                    number = value.split("Flight Number: ")[1].split(",")[0]
                    f = self.flights
                    if len(f[(f["Flight Number"] == number) & (f["OriginCityName"] == a)
                             & (f["DestCityName"] == b)]) < 1:
                        return False
                elif "self-driving" in value.lower() or "taxi" in value.lower():
                    a, b = ("-", "-") if a is None else (strip_paren(a), strip_paren(b))
                    mode = "self-driving" if "self-driving" in value.lower() else "taxi"
                    if self.drive_cost(a, b, mode) is None:
                        return False
            for meal in MEALS:
                if given(unit, meal) and len(self.restaurant(unit[meal])) < 1:
                    return False
            if given(unit, "attraction"):
                for entry in unit["attraction"].split(";")[:-1]:
                    if len(self.match(self.attractions, "City", entry)) < 1:
                        return False
            if given(unit, "accommodation") and len(self.hotel(unit["accommodation"])) < 1:
                return False
        return True

    def complete_information(self, q, plan):
        days = plan[:q["days"]]
        filled = sum(1 for u in days if u != {} and u["current_city"] != "You don't need to fill in the "
                     "information for this or later days.")
        if filled != q["days"]:
            return False
        cities = self.city_list(q, plan)
        if cities is None or len(set(cities) - {q["org"]}) != q["visiting_city_number"]:
            return False
        total = 0
        for i, u in enumerate(days):
            if any(k not in u for k in ("transportation", "breakfast", "lunch", "dinner", "attraction",
                                        "accommodation")):
                return False
            cc = u["current_city"]
            if ("from " in cc or "to " in cc) and u["transportation"] in ("", "-"):
                return False
            if "from " not in cc and " to " not in cc and u["attraction"] in ("", "-"):
                return False
            if i != q["days"] - 1 and u["accommodation"] in ("", "-"):
                return False
            if any(u[m] in ("", "-") for m in MEALS) and "from " not in cc:
                return False
            total += sum(1 for k in u if u[k] and u[k] != "-")
        return total / (6 * q["days"]) >= 0.5

    def minimum_nights(self, q, plan):
        stays = []
        for u in plan[:q["days"]]:
            if "accommodation" not in u:
                return False
            stays.append(u["accommodation"])
        runs = []
        for s in stays:
            if runs and runs[-1][0] == s:
                runs[-1][1] += 1
            else:
                runs.append([s, 1])
        for stay, nights in runs:
            if stay not in ("-", ""):
                rows = self.hotel(stay)
                if len(rows) == 1 and nights < rows.iloc[0]["minimum nights"]:
                    return False
        return True

    # hard
    def budget(self, q, plan):
        total, people = 0, q["people_number"]
        for u in plan[:q["days"]]:
            value = u["transportation"]
            if value and value != "-":
                a, b = extract_from_to(value)
                if a is None:
                    a, b = extract_from_to(u["current_city"])
                if a is not None:
                    if "flight number" in value.lower():
                        f = self.flights
                        rows = f[f["Flight Number"] == value.split("Flight Number: ")[1].split(",")[0]]
                        if len(rows) > 0:
                            total += rows["Price"].values[0] * people
                    elif "self-driving" in value.lower():
                        total += self.drive_cost(a, b, "self-driving") * math.ceil(people / 5)
                    elif "taxi" in value.lower():
                        total += self.drive_cost(a, b, "taxi") * math.ceil(people / 4)
            for meal in MEALS:
                if u[meal] and u[meal] != "-":
                    rows = self.restaurant(u[meal])
                    if len(rows) > 0:
                        total += rows["Average Cost"].values[0] * people
            if u["accommodation"] and u["accommodation"] != "-":
                rows = self.hotel(u["accommodation"])
                if len(rows) > 0:
                    total += rows["price"].values[0] * math.ceil(people / rows["maximum occupancy"].values[0])
        return total <= q["budget"]

    def room_rule(self, q, plan):
        rule = q["local_constraint"]["house rule"]
        if rule is None:
            return None
        phrase = {"smoking": "No smoking", "parities": "No parties", "children under 10": "No children under 10",
                  "visitors": "No visitors", "pets": "No pets"}.get(rule)
        for u in plan[:q["days"]]:
            if u["accommodation"] and u["accommodation"] != "-":
                rows = self.hotel(u["accommodation"])
                if len(rows) > 0 and phrase and phrase in str(rows["house_rules"].values[0]):
                    return False
        return True

    def room_type(self, q, plan):
        wanted = q["local_constraint"]["room type"]
        if wanted is None:
            return None
        for u in plan[:q["days"]]:
            if u["accommodation"] and u["accommodation"] != "-":
                rows = self.hotel(u["accommodation"])
                if len(rows) > 0:
                    kind = rows["room type"].values[0]
                    if (wanted == "not shared room" and kind == "Shared room") or \
                            (wanted == "shared room" and kind != "Shared room") or \
                            (wanted == "private room" and kind != "Private room") or \
                            (wanted == "entire room" and kind != "Entire home/apt"):
                        return False
        return True

    def cuisine(self, q, plan):
        wanted = q["local_constraint"]["cuisine"]
        if not wanted:
            return None
        found = set()
        for u in plan[:q["days"]]:
            for meal in MEALS:
                if u[meal] and u[meal] != "-":
                    if split_name_city(u[meal])[1] == q["org"]:
                        break
                    rows = self.restaurant(u[meal])
                    if len(rows) > 0:
                        found |= {c for c in wanted if c in rows.iloc[0]["Cuisines"]}
        return len(found) == len(wanted)

    def transportation(self, q, plan):
        rule = q["local_constraint"]["transportation"]
        if rule is None:
            return None
        for u in plan[:q["days"]]:
            value = u["transportation"]
            if value and value != "-":
                if (rule == "no flight" and "Flight" in value) or (rule == "no self-driving" and "Self-driving" in value):
                    return False
        return True

    def evaluate(self, q, plan):
        """{check: verdict} with None for hard checks not judged or not set."""
        out = {name: self._safe(getattr(self, name), q, plan) for name in COMMONSENSE}
        judged = out["complete_information"] and out["within_sandbox"]
        for name in HARD:
            out[name] = self._safe(getattr(self, name), q, plan) if judged else None
        return out

    @staticmethod
    def _safe(check, q, plan):
        try:
            return check(q, plan)
        except Exception:  # the official code would raise: a failed check for us
            return False


def verdicts(result) -> dict:
    out = {name: result.commonsense[name][0] for name in COMMONSENSE}
    out.update({name: (result.hard[name][0] if result.hard else None) for name in HARD})
    return out


# ------------------------------------------------------------------ data
def official_data() -> Path | None:
    return next((d for d in DATA_DIRS if (d / "database/background/citySet_with_states.txt").exists()), None)


def load_official(root: Path):
    cities = dict(line.split("\t") for line in
                  (root / "database/background/citySet_with_states.txt").read_text().splitlines() if line.strip())
    queries = [json.loads(x) for x in (root / "train_queries.jsonl").read_text().splitlines()]
    refs = [json.loads(x) for x in (root / "train_ref_info.jsonl").read_text().splitlines()]
    plans = [parse_plan(json.loads(x)["messages"][-1]["content"])
             for x in (root / "train_annotated_plans.jsonl").read_text().splitlines()]
    flights = {}
    for ref in refs:
        for f in Database.from_ref_info(ref, cities).flights:
            flights[(f["Flight Number"], f["FlightDate"], f["OriginCityName"], f["DestCityName"])] = f
    db = Database.load(root / "database", flights=list(flights.values()))
    return db, queries, plans


def synthetic_world(n: int = 45, seed: int = 0):
    """A small world and n plans for 3-day trips, when the official data is absent."""
    rng = random.Random(seed)
    states = {f"State{s}": [f"City{s}{c}" for c in range(4)] for s in range(5)}
    cities = {c: s for s, cs in states.items() for c in cs}
    db = Database(cities=cities)
    for city in cities:
        db.restaurants += [{"Name": f"Diner {k} of {city}", "Average Cost": rng.randint(5, 60),
                            "Cuisines": ", ".join(rng.sample(["Chinese", "American", "Italian", "Mexican",
                                                              "Indian", "Mediterranean", "French"], 2)),
                            "Aggregate Rating": 4.0, "City": city} for k in range(40)]
        db.attractions += [{"Name": f"Sight {k} of {city}", "City": city} for k in range(15)]
        db.accommodations += [{"NAME": f"Hotel {k} of {city}", "price": float(rng.randint(50, 400)),
                               "room type": rng.choice(["Private room", "Entire home/apt", "Shared room"]),
                               "house_rules": rng.choice(["No smoking", "No parties", "No pets", ""]),
                               "minimum nights": float(rng.choice([1, 1, 2, 3])), "maximum occupancy": 4,
                               "review rate number": 4.0, "city": city} for k in range(20)]
    queries, plans = [], []
    for i in range(n):
        org, dest = rng.sample(list(cities), 2)
        dates = [f"2022-03-{d:02d}" for d in range(10, 13)]
        out, back = f"F{i}0", f"F{i}1"
        for number, a, b, date in ((out, org, dest, dates[0]), (back, dest, org, dates[2])):
            db.flights.append({"Flight Number": number, "Price": rng.randint(100, 500), "FlightDate": date,
                               "OriginCityName": a, "DestCityName": b})
        meals = rng.sample([r["Name"] for r in db.restaurants if r["City"] == dest], 6)
        sights = rng.sample([a["Name"] for a in db.attractions if a["City"] == dest], 3)
        stay = rng.choice([h["NAME"] for h in db.accommodations if h["city"] == dest]) + f", {dest}"
        plans.append([
            {"days": 1, "current_city": f"from {org} to {dest}", "transportation":
             f"Flight Number: {out}, from {org} to {dest}", "breakfast": "-", "attraction": f"{sights[0]}, {dest};",
             "lunch": f"{meals[0]}, {dest}", "dinner": f"{meals[1]}, {dest}", "accommodation": stay},
            {"days": 2, "current_city": dest, "transportation": "-", "breakfast": f"{meals[2]}, {dest}",
             "attraction": f"{sights[1]}, {dest};{sights[2]}, {dest};", "lunch": f"{meals[3]}, {dest}",
             "dinner": f"{meals[4]}, {dest}", "accommodation": stay},
            {"days": 3, "current_city": f"from {dest} to {org}", "transportation":
             f"Flight Number: {back}, from {dest} to {org}", "breakfast": f"{meals[5]}, {dest}",
             "attraction": "-", "lunch": "-", "dinner": "-", "accommodation": "-"}])
        queries.append({"org": org, "dest": dest, "days": 3, "visiting_city_number": 1, "date": dates,
                        "people_number": 2, "budget": rng.randint(1000, 3000), "level": "medium",
                        "local_constraint": {"house rule": rng.choice([None, "smoking", "parties"]),
                                             "cuisine": None, "room type": None, "transportation": None}})
    db.reindex()
    return db, queries, plans


def perturb(db: Database, query: dict, plan: list[dict], rng: random.Random) -> tuple[dict, list[dict]]:
    """One random change that usually breaks some check."""
    query, plan = copy.deepcopy(query), copy.deepcopy(plan)
    days = [d for d in plan[:query["days"]] if d]
    unit = rng.choice(days)
    kind = rng.randrange(8)
    meals = [m for m in MEALS if unit.get(m) not in (None, "", "-")]
    if kind == 0 and meals:  # a restaurant from another city
        other = rng.choice(db.restaurants)
        unit[rng.choice(meals)] = f"{other['Name']}, {other['City']}"
    elif kind == 1:  # repeat a meal
        eaten = [d[m] for d in days for m in MEALS if d.get(m) not in (None, "", "-")]
        if eaten and meals:
            unit[rng.choice(meals)] = rng.choice(eaten)
    elif kind == 2:  # drop a field
        unit[rng.choice(["breakfast", "lunch", "dinner", "attraction", "accommodation", "transportation"])] = "-"
    elif kind == 3 and unit.get("accommodation") not in (None, "", "-"):  # unknown or another hotel
        city = unit["accommodation"].rsplit(",", 1)[-1].strip()
        hotels = db.accommodations_in(city) or db.accommodations
        unit["accommodation"] = rng.choice([f"Nowhere Inn, {city}", f"{rng.choice(hotels)['NAME']}, {city}"])
    elif kind == 4 and "Flight Number: " in (unit.get("transportation") or ""):  # wrong flight number
        unit["transportation"] = re.sub(r"F\d+", "F123", unit["transportation"])
    elif kind == 5 and (unit.get("attraction") or "").endswith(";"):  # drop the last ';'
        unit["attraction"] = unit["attraction"][:-1]
    elif kind == 6:  # a detour to another city
        unit["current_city"] = rng.choice(list(db.cities))
    else:  # a tighter budget or a different local constraint
        query["budget"] = int(query["budget"] * rng.choice([0.5, 0.8]))
        query["local_constraint"]["house rule"] = rng.choice([None, "smoking", "pets", "parties"])
    return query, plan


# ------------------------------------------------------------------ main
def main():
    args = parse_args()
    t0 = time.perf_counter()
    root = official_data()
    if root is None:
        print("official TravelPlanner data not found: using a synthetic world built here")
        db, queries, plans = synthetic_world(seed=args.seed)
    else:
        db, queries, plans = load_official(root)
    rng = random.Random(args.seed)
    cases = list(zip(queries, plans))
    for q, p in list(cases):
        cases += [perturb(db, q, p, rng) for _ in range(args.copies)]
    baseline = PandasOfficial(db)
    print(f"database: {len(db.cities)} cities, {len(db.flights)} flights, {len(db.accommodations)} "
          f"accommodations, {len(db.restaurants)} restaurants, {len(db.attractions)} attractions, "
          f"{len(db.distances)} routes; {len(cases)} plans ({len(plans)} base + {args.copies} "
          f"perturbed copies each); setup {time.perf_counter() - t0:.1f}s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    t = time.perf_counter()
    ours = [evaluate_plan(db, q, p) for q, p in cases]
    rounds = 1
    while time.perf_counter() - t < args.min_seconds:
        ours = [evaluate_plan(db, q, p) for q, p in cases]
        rounds += 1
    ours_rate = rounds * len(cases) / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(rounds):
        [evaluate_plan(db, q, p, "strict") for q, p in cases]
    strict_rate = rounds * len(cases) / (time.perf_counter() - t)
    t = time.perf_counter()
    theirs = [baseline.evaluate(q, p) for q, p in cases]
    pandas_rate = len(cases) / (time.perf_counter() - t)

    disagree = [(i, name, v, verdicts(ours[i])[name]) for i, got in enumerate(theirs)
                for name, v in got.items() if v != verdicts(ours[i])[name]]
    for i, name, theirs_v, ours_v in disagree[:10]:
        print(f"  plan {i}: {name}: pandas {theirs_v}, questline {ours_v}")
    assert not disagree, f"{len(disagree)} disagreements"
    checks = len(cases) * len(COMMONSENSE) + sum(r.hard is not None for r in ours) * len(HARD)
    print(f"both implementations agree on all {checks} checks of {len(cases)} plans; "
          f"{sum(r.final_pass for r in ours[:len(plans)])}/{len(plans)} unperturbed plans pass everything")
    print(metrics_table(official_metrics([q for q, _ in cases], ours), "official metrics over these plans:"))
    print(f"\nplans evaluated per second (official mode): questline {ours_rate:,.0f}, pandas {pandas_rate:,.1f}"
          f"  -> {ours_rate / pandas_rate:,.0f}x faster")
    print(f"questline strict mode: {strict_rate:,.0f} plans/s")
    tool_rates(db, queries, baseline, args.min_seconds)
    print(f"total run {time.perf_counter() - t0:.1f}s")


def tool_calls_of(queries: list[dict]) -> list[tuple[str, list[str]]]:
    """The searches a careful agent makes for each query: flights out and back,
    drives, and the destination's hotels, restaurants and attractions."""
    calls = []
    for q in queries:
        org, dest, dates = q["org"], q["dest"], q["date"]
        city = dest if q["days"] == 3 else org
        calls += [("FlightSearch", [org, dest, dates[0]]), ("FlightSearch", [dest, org, dates[-1]]),
                  ("GoogleDistanceMatrix", [org, dest, "self-driving"]), ("GoogleDistanceMatrix", [org, dest, "taxi"]),
                  ("AccommodationSearch", [city]), ("RestaurantSearch", [city]), ("AttractionSearch", [city])]
    return calls


def tool_rates(db: Database, queries: list[dict], baseline: PandasOfficial, min_seconds: float) -> None:
    """Tool calls per second, questline's `Tools` (both renderings) vs the official
    pandas lookups with `DataFrame.to_string(index=False)` as the official agent renders them."""
    from questline.envs.travelplanner.tools import Tools
    calls = tool_calls_of(queries)
    rates = {}
    for render in ("table", "compact"):
        tools, t, n = Tools(db, render), time.perf_counter(), 0
        while time.perf_counter() - t < min_seconds:
            for name, args in calls:
                tools.call(name, args)
            n += len(calls)
        rates[render] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for name, args in calls:
        baseline.tool(name, args)
    rates["pandas"] = len(calls) / (time.perf_counter() - t)
    print(f"tool calls per second over {len(calls)} searches: questline table {rates['table']:,.0f}, "
          f"compact {rates['compact']:,.0f}, pandas + to_string {rates['pandas']:,.1f}"
          f"  -> {rates['table'] / rates['pandas']:,.0f}x faster (table)")


if __name__ == "__main__":
    main()
