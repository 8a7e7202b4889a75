"""TravelPlanner's tools over one Database, with the official messages.

    CitySearch[State]                          cities of a state
    FlightSearch[Departure City, Destination City, YYYY-MM-DD]
    GoogleDistanceMatrix[Origin, Destination, self-driving|taxi]
    AccommodationSearch[City]   RestaurantSearch[City]   AttractionSearch[City]
    NotebookWrite[Short Description]           stores the last result in the notebook

Results are tables rendered two ways that hold the same information:
`table` (the official `DataFrame.to_string(index=False)` look: aligned columns) and
`compact` (a `|`-separated header line and one line per row, far fewer tokens for
small models). A bad call returns (False, message); nothing here raises for what an
agent writes.

Official behaviours kept on purpose (OSU-NLP-Group/TravelPlanner da7c1d4): AccommodationSearch
answers an empty city with "There is no attraction in this city." (the official API's
message); cities and dates are validated before searching, with the official messages;
GoogleDistanceMatrix drops a '(State)' suffix from city names, reads a route's first row in
distance.csv and answers "No valid information." when that row is empty or the drive takes
days. Deliberate deviation: GoogleDistanceMatrix takes only the modes 'self-driving' and
'taxi' (any case, answered in lower case), where the official tool takes any mode and
answers 'cost: None' for one without 'driving' (no plan can use such a drive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from questline.envs.travelplanner.database import (
    ACCOMMODATION_COLS,
    ATTRACTION_COLS,
    FLIGHT_COLS,
    RESTAURANT_COLS,
    Database,
)
from questline.envs.travelplanner.evaluate import before_paren

SIGNATURES = {
    "FlightSearch": ("Departure City", "Destination City", "Date"),
    "GoogleDistanceMatrix": ("Origin", "Destination", "Mode"),
    "AccommodationSearch": ("City",),
    "RestaurantSearch": ("City",),
    "AttractionSearch": ("City",),
    "CitySearch": ("State",),
    "NotebookWrite": ("Short Description",),
}
INVALID_ACTION = (
    "Invalid Action. Valid Actions are  FlightSearch[Departure City, Destination City, Date] / "
    "AccommodationSearch[City] /  RestaurantSearch[City] / NotebookWrite[Short Description] / "
    "AttractionSearch[City] / CitySearch[State] / GoogleDistanceMatrix[Origin, Destination, Mode] "
    "and Planner[Query].")
ILLEGAL = {  # the official messages for a call whose arguments do not fit
    "FlightSearch": "Illegal Flight Search. Please try again.",
    "GoogleDistanceMatrix": "Illegal GoogleDistanceMatrix. Please try again.",
    "AccommodationSearch": "Illegal Accommodation Search. Please try again.",
    "RestaurantSearch": "Illegal Restaurant Search. Please try again.",
    "AttractionSearch": "Illegal Attraction Search. Please try again.",
    "CitySearch": "Illegal City Search. Please try again.",
    "NotebookWrite": "Illegal Notebook Write. Please try again.",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RENDERS = ("table", "compact")


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    text: str
    rows: list[dict] | None = None  # the data behind a successful search (what NotebookWrite stores)


def render_rows(rows: list[dict], cols: tuple[str, ...], style: str = "table") -> str:
    if style == "compact":
        return "\n".join(["|".join(cols)] + ["|".join(_cell(r.get(c)) for c in cols) for r in rows])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = [" ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += [" ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _cell(v) -> str:
    if v is None:
        return "NaN"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    return str(v)


class Tools:
    """One episode's tools: the database, the rendering and the notebook."""

    def __init__(self, db: Database, render: str = "table"):
        if render not in RENDERS:
            raise ValueError(f"render: '{render}' is not one of {', '.join(RENDERS)}")
        self.db, self.render = db, render
        self.notebook: list[dict] = []
        self.last: ToolResult | None = None

    def call(self, name: str, args: list[str]) -> ToolResult:
        if name not in SIGNATURES:
            return ToolResult(False, INVALID_ACTION)
        if len(args) != len(SIGNATURES[name]) and name != "NotebookWrite":
            return ToolResult(False, ILLEGAL[name])
        result = getattr(self, "_" + name)(*([", ".join(args)] if name == "NotebookWrite" else args))
        if name != "NotebookWrite" and result.ok:
            self.last = result
        return result

    # ------------------------------------------------------------ the tools
    def _FlightSearch(self, origin: str, dest: str, date: str) -> ToolResult:
        if not _DATE.match(date):
            return ToolResult(False, f"'{date}' is not in the format YYYY-MM-DD")
        for city in (origin, dest):
            if city not in self.db.cities:
                return ToolResult(False, self._bad_city(city))
        rows = self.db.flights_on(origin, dest, date)
        if not rows:
            return ToolResult(True, f"There is no flight from {origin} to {dest} on {date}.", [])
        return ToolResult(True, render_rows(rows, FLIGHT_COLS, self.render), rows)

    def _GoogleDistanceMatrix(self, origin: str, dest: str, mode: str) -> ToolResult:
        mode = mode.lower()
        if mode not in ("self-driving", "taxi"):
            return ToolResult(False, ILLEGAL["GoogleDistanceMatrix"])
        origin, dest = before_paren(origin), before_paren(dest)  # as the official tool does
        if (origin, dest) not in self.db.distances:
            return ToolResult(True, f"{mode}, from {origin} to {dest}, no valid information.", [])
        route = self.db.route(origin, dest)
        if route is None:  # the route's (first) row is empty
            return ToolResult(True, "No valid information.", [])
        cost = self.db.drive_cost(origin, dest, mode)
        if cost is None:  # a drive of days
            return ToolResult(True, "No valid information.", [])
        text = (f"{mode}, from {origin} to {dest}, duration: {route['duration']}, "
                f"distance: {route['distance']}, cost: {cost}")
        return ToolResult(True, text, [{"mode": mode, "origin": origin, "destination": dest, **route,
                                        "cost": cost}])

    def _AccommodationSearch(self, city: str) -> ToolResult:
        return self._city_table(city, self.db.accommodations_in, ACCOMMODATION_COLS,
                                "There is no attraction in this city.")

    def _RestaurantSearch(self, city: str) -> ToolResult:
        return self._city_table(city, self.db.restaurants_in, RESTAURANT_COLS,
                                "There is no restaurant in this city.")

    def _AttractionSearch(self, city: str) -> ToolResult:
        return self._city_table(city, self.db.attractions_in, ATTRACTION_COLS,
                                "There is no attraction in this city.")

    def _CitySearch(self, state: str) -> ToolResult:
        cities = self.db.cities_in(state)
        if not cities:
            return ToolResult(False, "Invalid State")
        return ToolResult(True, str(cities), [{"City": c} for c in cities])

    def _NotebookWrite(self, description: str) -> ToolResult:
        if self.last is None:
            return ToolResult(False, "There is nothing to write: search first.")
        self.notebook.append({"Short Description": description, "Content": self.last.text})
        return ToolResult(True, f"The information has been recorded in Notebook, and its index is "
                                f"{len(self.notebook) - 1}.")

    # ------------------------------------------------------------ helpers
    def _city_table(self, city: str, lookup, cols, empty: str) -> ToolResult:
        if city not in self.db.cities:
            return ToolResult(False, self._bad_city(city))
        rows = lookup(city)
        if not rows:
            return ToolResult(True, empty, [])
        return ToolResult(True, render_rows(rows, cols, self.render), rows)

    def _bad_city(self, city: str) -> str:
        if self.render == "compact" or len(self.db.cities) > 50:
            return f"{city} is not valid city in the database."
        return f"{city} is not valid city in {list(self.db.cities)}."
