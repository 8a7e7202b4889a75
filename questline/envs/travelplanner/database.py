"""The TravelPlanner database: the official tables in the official column schema,
with the indexes the tools and the evaluator need.

One class holds the data whatever its source: a world Questline generated
(`world.py`), the official database directory a user downloaded, or the reference
information the benchmark hands out with one query (`from_ref_info`). On disk it
uses the official layout, so a generated world and the official files are read by
the same code:

    background/citySet_with_states.txt     city TAB state, one per line
    flights/clean_Flights_2022.csv         [index], Flight Number, Price, DepTime, ArrTime,
                                           ActualElapsedTime, FlightDate, OriginCityName,
                                           DestCityName, Distance
    accommodations/clean_accommodations_2022.csv
                                           [index], NAME, room type, price, minimum nights,
                                           review rate number, house_rules, maximum occupancy, city
    restaurants/clean_restaurant_2022.csv  [index], Name, City, Cuisines, Average Cost,
                                           Aggregate Rating
    attractions/attractions.csv            Name, Latitude, Longitude, Address, Phone,
                                           Website, City
    googleDistanceMatrix/distance.csv      origin, destination, cost, duration, distance

Rows are plain dicts keyed by the official column names.

Faithful to the official tools (OSU-NLP-Group/TravelPlanner at da7c1d4; tools/ last
changed at b8e48bf): tables drop rows with a missing value, as `pd.read_csv().dropna()`
does; a route listed more than once in distance.csv (25 pairs differ between copies)
gives its FIRST row, as the official `data[...].values[0]` does; drive costs are
int(km x 0.05) per car and int(km) per taxi; a drive whose duration says 'day' has no cost.
Deliberate deviations, each with its reason:
 - distances are parsed with float(), not eval(): the same numbers for every 'N km' value
   in the official file, and no code is executed from a data file;
 - entities are looked up through dict indexes (by city, flight number, route), not pandas
   masks: the same rows in the same order, far faster for RL rollouts.
"""

from __future__ import annotations

import ast
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

FLIGHT_COLS = ("Flight Number", "Price", "DepTime", "ArrTime", "ActualElapsedTime",
               "FlightDate", "OriginCityName", "DestCityName", "Distance")
ACCOMMODATION_COLS = ("NAME", "price", "room type", "house_rules", "minimum nights",
                      "maximum occupancy", "review rate number", "city")
RESTAURANT_COLS = ("Name", "Average Cost", "Cuisines", "Aggregate Rating", "City")
ATTRACTION_COLS = ("Name", "Latitude", "Longitude", "Address", "Phone", "Website", "City")

# Where each table lives, its columns in file order, and whether the file starts with an
# unnamed index column (the official CSVs do for these three).
FILES = {
    "flights": ("flights/clean_Flights_2022.csv", ("Flight Number", "Price", "DepTime", "ArrTime",
                "ActualElapsedTime", "FlightDate", "OriginCityName", "DestCityName", "Distance"), True),
    "accommodations": ("accommodations/clean_accommodations_2022.csv", ("NAME", "room type", "price",
                       "minimum nights", "review rate number", "house_rules", "maximum occupancy",
                       "city"), True),
    "restaurants": ("restaurants/clean_restaurant_2022.csv", ("Name", "City", "Cuisines", "Average Cost",
                    "Aggregate Rating"), True),
    "attractions": ("attractions/attractions.csv", ATTRACTION_COLS, False),
}
CITIES_FILE = "background/citySet_with_states.txt"
DISTANCE_FILE = "googleDistanceMatrix/distance.csv"

# official value types (what pandas gives for the official files)
_TYPES = {"Price": int, "Distance": float, "price": float, "minimum nights": float,
          "maximum occupancy": int, "review rate number": float, "Average Cost": int,
          "Aggregate Rating": float, "Latitude": float, "Longitude": float}


def km_of(distance: str) -> float:
    """'1,433 km' -> 1433.0"""
    return float(distance.replace("km", "").replace(",", "").strip())


def drive_cost(km: float, mode: str) -> int:
    """Official costs: self-driving int(km * 0.05) per car, taxi int(km) per taxi."""
    return int(km * 0.05) if "driving" in mode else int(km)


@dataclass
class Database:
    cities: dict[str, str]  # city -> state
    flights: list[dict] = field(default_factory=list)
    accommodations: list[dict] = field(default_factory=list)
    restaurants: list[dict] = field(default_factory=list)
    attractions: list[dict] = field(default_factory=list)
    distances: dict[tuple[str, str], dict] = field(default_factory=dict)  # -> {"duration", "distance"}

    def __post_init__(self):
        self.reindex()

    def reindex(self) -> None:
        self._flights_by_route: dict[tuple, list[dict]] = defaultdict(list)
        self._flights_by_number: dict[str, list[dict]] = defaultdict(list)
        for f in self.flights:
            self._flights_by_route[(f["OriginCityName"], f["DestCityName"], f["FlightDate"])].append(f)
            self._flights_by_number[f["Flight Number"]].append(f)
        self._by_city = {}
        for table, key in (("accommodations", "city"), ("restaurants", "City"), ("attractions", "City")):
            index: dict[str, list[dict]] = defaultdict(list)
            for row in getattr(self, table):
                index[row[key]].append(row)
            self._by_city[table] = index
        self._states: dict[str, list[str]] = defaultdict(list)
        for city, state in self.cities.items():
            self._states[state].append(city)

    # ------------------------------------------------------------ lookups
    def states(self) -> dict[str, list[str]]:
        return dict(self._states)

    def cities_in(self, state: str) -> list[str]:
        return list(self._states.get(state, ()))

    def flights_on(self, origin: str, dest: str, date: str) -> list[dict]:
        return self._flights_by_route.get((origin, dest, date), [])

    def flights_numbered(self, number: str) -> list[dict]:
        return self._flights_by_number.get(number, [])

    def accommodations_in(self, city: str) -> list[dict]:
        return self._by_city["accommodations"].get(city, [])

    def restaurants_in(self, city: str) -> list[dict]:
        return self._by_city["restaurants"].get(city, [])

    def attractions_in(self, city: str) -> list[dict]:
        return self._by_city["attractions"].get(city, [])

    def route(self, origin: str, dest: str) -> dict | None:
        """The distance-matrix row {'duration', 'distance'} or None (no row, or empty)."""
        row = self.distances.get((origin, dest))
        if not row or not row.get("duration") or not row.get("distance"):
            return None
        return row

    def drive_cost(self, origin: str, dest: str, mode: str) -> int | None:
        """Cost of one car (self-driving) or taxi, as the official evaluator computes it:
        None when there is no route or the drive takes days."""
        row = self.route(origin, dest)
        if row is None or "day" in row["duration"]:
            return None
        return drive_cost(km_of(row["distance"]), mode)

    # ------------------------------------------------------------ official layout on disk
    def save(self, root: str | Path) -> Path:
        import pandas as pd
        root = Path(root)
        for table, (rel, cols, indexed) in FILES.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            frame = pd.DataFrame(getattr(self, table), columns=list(cols))
            frame.to_csv(path, index=indexed)
        (root / CITIES_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / CITIES_FILE).write_text("\n".join(f"{c}\t{s}" for c, s in self.cities.items()))
        (root / "background/citySet.txt").write_text("\n".join(self.cities))
        (root / "background/stateSet.txt").write_text("\n".join(dict.fromkeys(self.cities.values())))
        rows = [{"origin": o, "destination": d, "cost": None, **v} for (o, d), v in self.distances.items()]
        (root / DISTANCE_FILE).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=["origin", "destination", "cost", "duration", "distance"]).to_csv(
            root / DISTANCE_FILE, index=False)
        return root

    @classmethod
    def load(cls, root: str | Path, flights: list[dict] | None = None) -> Database:
        """Read a directory in the official layout (a generated world or the official
        database). A missing flights file gives no flights unless `flights` is given."""
        import pandas as pd
        root = Path(root)
        if not (root / CITIES_FILE).exists():
            raise FileNotFoundError(f"{root}: not a TravelPlanner database (no {CITIES_FILE})")
        cities = {}
        for line in (root / CITIES_FILE).read_text().splitlines():
            if line.strip():
                city, state = line.split("\t")
                cities[city] = state
        tables = {}
        for table, (rel, cols, _) in FILES.items():
            path = root / rel
            if not path.exists():
                tables[table] = []
                continue
            # the official tools drop rows with any missing value (attractions without a
            # phone or website included)
            frame = pd.read_csv(path).dropna(subset=list(cols))
            tables[table] = [_typed(r) for r in frame[list(cols)].to_dict("records")]
        if flights is not None:
            tables["flights"] = flights
        distances = {}
        if (root / DISTANCE_FILE).exists():
            frame = pd.read_csv(root / DISTANCE_FILE)
            for r in frame.to_dict("records"):
                ok = isinstance(r["duration"], str) and isinstance(r["distance"], str)
                # the official file lists some routes twice with different rows (25 pairs);
                # the official tool and evaluator read the first
                distances.setdefault((r["origin"], r["destination"]),
                                     {"duration": r["duration"], "distance": r["distance"]} if ok else {})
        return cls(cities=cities, distances=distances, **tables)

    @classmethod
    def from_ref_info(cls, ref: dict, cities: dict[str, str]) -> Database:
        """The database the benchmark's reference information describes for one query
        (a line of the official `*_ref_info.jsonl`, keys like 'Flight from A to B on
        2022-03-16', 'Self-driving from A to B', 'Accommodations in C')."""
        db = cls(cities=dict(cities))
        for desc, content in ref.items():
            if isinstance(content, str):
                content = _parse_content(content)
            if desc.startswith(("Self-driving from", "Taxi from")):
                if isinstance(content, dict):
                    db.distances[(content["origin"], content["destination"])] = {
                        "duration": content["duration"], "distance": content["distance"]}
                continue
            if not isinstance(content, list):
                continue  # 'No valid information.' / 'There is no flight ...'
            rows = [_typed(r) for r in content]
            if desc.startswith("Flight from"):
                db.flights += rows
            elif desc.startswith("Accommodations in"):
                db.accommodations += rows
            elif desc.startswith("Restaurants in"):
                db.restaurants += rows
            elif desc.startswith("Attractions in"):
                db.attractions += rows
        db.reindex()
        return db


_DRIVE = re.compile(r"(self-driving|taxi), from (.+?) to (.+?), duration: (.+?), distance: (.+?), cost: (\d+)")


def _parse_content(text: str):
    """Reference-info content given as text: a drive description or a table literal."""
    if m := _DRIVE.match(text.strip()):
        return {"origin": m.group(2), "destination": m.group(3), "duration": m.group(4),
                "distance": m.group(5)}
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _typed(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        kind = _TYPES.get(k)
        if kind is not None and v is not None and not (isinstance(v, float) and math.isnan(v)):
            v = kind(v)
        elif isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out
