"""Offline TravelPlanner worlds: a US-like database in the official schema.

`generate_world(scale, seed)` builds states and cities (real names, coordinates drawn
inside each state's box), a distance matrix, flights on every date for a connected
subset of city pairs, and per-city accommodations, restaurants and attractions.
`official_world(db_dir)` loads the official tables and adds generated flights, since
the 3.8M-row official flight table is rarely at hand.

Distributions are calibrated on the official data (numbers below say where they come
from: the official database CSVs and the 313 distinct flights in train_ref_info.jsonl).
Names are built so the official evaluator can match them: no commas, and within one
city no entity name is a substring of another of the same table.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from questline.envs.travelplanner.database import Database, km_of

# ------------------------------------------------------------------ calibration constants
# accommodations (clean_accommodations_2022.csv, 5,047 rows, 14.2 per city, sd 4.1)
ROOM_TYPE_SHARES = {"Entire home/apt": 0.519, "Private room": 0.457, "Shared room": 0.024}
PRICE_RANGE = (50, 1200)  # quantiles 5/25/50/75/95% = 105/338/624/916/1145: uniform
# minimum nights: share of each value (1-2 nights ~49%, 30 nights 7.5%)
MIN_NIGHTS = {1: .245, 2: .247, 3: .161, 4: .079, 5: .056, 6: .013, 7: .044, 10: .012, 14: .010,
              15: .008, 20: .006, 21: .003, 28: .005, 29: .006, 30: .075, 31: .007}
# maximum occupancy by room type: private rooms 1-2 (mean 1.52), shared 1, entire homes 2-11
OCCUPANCY = {"Entire home/apt": {2: .28, 3: .28, 4: .118, 5: .09, 6: .074, 7: .056, 8: .046, 9: .03,
                                 10: .018, 11: .008},
             "Private room": {1: .476, 2: .524}, "Shared room": {1: 1.0}}
REVIEW_RATES = {1.0: .11, 2.0: .215, 3.0: .225, 4.0: .222, 5.0: .228}
HOUSE_RULES = ("parties", "smoking", "children under 10", "visitors", "pets")  # each ~28% of rows
# number of rules per row: 0: 14%, 1: 43%, 2: 28%, 3: 14%. Rows without rules have an empty
# cell, which the official tools' dropna() hides, so generated rows carry 1-3 rules.
RULE_COUNTS = {1: .503, 2: .329, 3: .168}
# restaurants (clean_restaurant_2022.csv, 9,551 rows, 30.3 per city, sd 6.3)
COST_RANGE = (10, 100)  # quantiles 5/25/50/75/95% = 14/32/55/77/96: uniform; 0.13% up to 250
COST_TAIL = (0.0013, 250)
QUERY_CUISINES = ("Chinese", "American", "Italian", "Mexican", "Indian", "Mediterranean", "French")
OTHER_CUISINES = ("Tea", "BBQ", "Seafood", "Cafe", "Desserts", "Pizza", "Fast Food", "Bakery")
CUISINE_WEIGHTS = (0.144, 0.376)  # share of rows listing one query / one other cuisine
CUISINE_COUNTS = {2: .081, 3: .251, 4: .337, 5: .25, 6: .082}
RATING_ZERO, RATING_MEAN, RATING_SD = 0.225, 3.3, 0.5  # 22.5% unrated (0.0), else ~N(3.3, .5)
# attractions (attractions.csv: 18.9 per city, mostly 20)
# distance matrix (distance.csv): road km / great-circle km median 1.18 (5-95%: 1.08-1.38),
# effective speed median 108 km/h (5-95%: 95-112); >= 24 h reads "1 day 2 hours"
ROAD_FACTOR, ROAD_FACTOR_SD = 1.18, 0.07
SPEED_KMH, SPEED_SD = 106.0, 4.0
# flights (train_ref_info.jsonl): Distance in miles; price = 0.332 $/mile x lognormal(sd .273)
# (corr .92); duration = 0.118 min/mile + 38.8 min (resid sd 14); ArrTime is local time
# (time zones); 1-33 flights per route and day (median 3); departures by hour:
FLIGHT_PRICE_PER_MILE, FLIGHT_PRICE_LOG_SD, FLIGHT_PRICE_MIN = 0.332, 0.273, 20
FLIGHT_MIN_PER_MILE, FLIGHT_MIN_BASE, FLIGHT_MIN_SD = 0.118, 38.8, 14.0
DEPARTURE_HOURS = (2, 2, 0, 0, 1, 15, 22, 15, 19, 17, 16, 15, 19, 15, 20, 18, 18, 26, 15, 18, 13, 15, 11,
                   1)
KM_PER_MILE = 1.609

DEFAULT_DATES = ("2022-03-01", "2022-03-31")

# ------------------------------------------------------------------ geography
# state: (abbreviation, centre latitude, centre longitude, half height, half width in degrees,
# cities, largest first). Names are real; coordinates are drawn inside the box. Names are
# unique and none is a substring of another (the evaluator matches names by substring).
STATES = {
    "Alabama": ("AL", 32.8, -86.8, 1.6, 1.0, "Birmingham Montgomery Mobile Huntsville Tuscaloosa Dothan"),
    "Arizona": ("AZ", 34.2, -111.7, 2.0, 2.0, "Phoenix Tucson Flagstaff Yuma Mesa Prescott Sedona"),
    "Arkansas": ("AR", 34.9, -92.4, 1.2, 1.6, "Little Rock|Fayetteville|Fort Smith|Jonesboro|Texarkana"),
    "California": ("CA", 37.2, -119.5, 4.0, 3.5,
                   "Los Angeles|San Francisco|San Diego|Sacramento|San Jose|Fresno|Oakland|Long Beach|"
                   "Bakersfield|Anaheim|Riverside|Stockton|Santa Barbara|Redding|Palm Springs|Monterey|"
                   "Burbank|Santa Rosa|Eureka|Modesto"),
    "Colorado": ("CO", 39.0, -105.5, 1.8, 3.0, "Denver|Colorado Springs|Aspen|Boulder|Durango|"
                 "Grand Junction|Fort Collins|Pueblo|Alamosa|Gunnison"),
    "Connecticut": ("CT", 41.6, -72.7, 0.4, 0.8, "Hartford|New Haven|Stamford|Bridgeport"),
    "Delaware": ("DE", 39.0, -75.5, 0.5, 0.3, "Dover Lewes Milford"),
    "Florida": ("FL", 28.6, -82.4, 2.5, 2.5, "Miami|Orlando|Tampa|Jacksonville|Tallahassee|Fort Lauderdale|"
                "West Palm Beach|Pensacola|Sarasota|Fort Myers|Key West|Gainesville|Daytona Beach|"
                "Panama City|St. Petersburg|Punta Gorda"),
    "Georgia": ("GA", 32.7, -83.4, 1.8, 1.5, "Atlanta Savannah Augusta Macon Valdosta Athens Brunswick"),
    "Idaho": ("ID", 44.4, -114.6, 2.5, 1.5, "Boise|Idaho Falls|Pocatello|Twin Falls|Lewiston|Sun Valley"),
    "Illinois": ("IL", 40.0, -89.2, 2.0, 1.2, "Chicago Springfield Peoria Rockford Champaign Moline "
                 "Bloomington"),
    "Indiana": ("IN", 39.9, -86.3, 1.6, 1.0, "Indianapolis|Fort Wayne|Evansville|South Bend|Gary"),
    "Iowa": ("IA", 42.0, -93.5, 1.0, 2.5, "Des Moines|Cedar Rapids|Davenport|Sioux City|Dubuque|Waterloo"),
    "Kansas": ("KS", 38.5, -98.4, 1.0, 3.0, "Wichita|Topeka|Manhattan|Dodge City|Salina|Hays"),
    "Kentucky": ("KY", 37.5, -85.3, 0.8, 2.5, "Louisville|Lexington|Bowling Green|Paducah|Owensboro"),
    "Louisiana": ("LA", 31.0, -92.0, 1.3, 1.8, "New Orleans|Baton Rouge|Shreveport|Lafayette|Lake Charles|"
                  "Monroe|Alexandria"),
    "Maine": ("ME", 45.3, -69.2, 1.8, 1.3, "Bangor|Presque Isle|Bar Harbor|Waterville"),
    "Maryland": ("MD", 39.0, -76.8, 0.4, 1.5, "Baltimore Annapolis Hagerstown Salisbury Frederick"),
    "Massachusetts": ("MA", 42.3, -71.8, 0.4, 1.4, "Boston Worcester Nantucket Hyannis Lowell Pittsfield"),
    "Michigan": ("MI", 44.3, -85.4, 2.0, 2.0, "Detroit|Grand Rapids|Lansing|Traverse City|Kalamazoo|"
                 "Marquette|Flint|Saginaw|Escanaba|Alpena"),
    "Minnesota": ("MN", 46.3, -94.3, 2.2, 2.0, "Minneapolis|Duluth|St. Cloud|Bemidji|Brainerd|"
                  "International Falls"),
    "Mississippi": ("MS", 32.7, -89.7, 1.7, 1.0, "Gulfport Hattiesburg Tupelo Biloxi Meridian"),
    "Missouri": ("MO", 38.4, -92.5, 1.3, 2.3, "St. Louis|Kansas City|Joplin|Branson|Cape Girardeau"),
    "Montana": ("MT", 47.0, -109.6, 1.5, 4.5, "Billings|Missoula|Bozeman|Great Falls|Helena|Kalispell"),
    "Nebraska": ("NE", 41.5, -99.8, 1.0, 3.5, "Omaha|Lincoln|Grand Island|Kearney|North Platte|Scottsbluff"),
    "Nevada": ("NV", 39.3, -116.6, 3.0, 2.0, "Las Vegas|Reno|Elko|Carson City"),
    "New Hampshire": ("NH", 43.7, -71.6, 0.9, 0.6, "Manchester Concord Portsmouth Lebanon"),
    "New Jersey": ("NJ", 40.2, -74.7, 0.8, 0.5, "Newark|Atlantic City|Trenton|Princeton|Camden"),
    "New Mexico": ("NM", 34.4, -106.1, 2.0, 2.0, "Albuquerque|Santa Fe|Las Cruces|Roswell|Farmington|Taos"),
    "New York": ("NY", 42.9, -75.5, 1.3, 2.8, "New York|Buffalo|Rochester|Albany|Syracuse|Ithaca|Binghamton|"
                 "Niagara Falls|Plattsburgh|Elmira|White Plains"),
    "North Carolina": ("NC", 35.5, -79.4, 1.0, 3.0, "Charlotte|Raleigh|Asheville|Wilmington|Greensboro|"
                       "Durham|New Bern|Hickory"),
    "North Dakota": ("ND", 47.4, -100.5, 1.0, 3.0, "Fargo|Bismarck|Grand Forks|Minot|Williston|Devils Lake"),
    "Ohio": ("OH", 40.3, -82.8, 1.2, 1.8, "Columbus Cleveland Cincinnati Toledo Sandusky Akron Youngstown"),
    "Oklahoma": ("OK", 35.5, -97.5, 1.0, 3.0, "Oklahoma City|Tulsa|Norman|Lawton|Stillwater"),
    "Oregon": ("OR", 43.9, -120.6, 1.5, 3.0, "Portland|Eugene|Salem|Medford|Pendleton|Astoria|Klamath Falls"),
    "Pennsylvania": ("PA", 40.9, -77.8, 0.9, 2.7, "Philadelphia|Pittsburgh|Harrisburg|Allentown|Erie|"
                     "Scranton|State College|Latrobe"),
    "Rhode Island": ("RI", 41.7, -71.5, 0.3, 0.3, "Providence Newport Westerly"),
    "South Carolina": ("SC", 33.9, -80.9, 1.0, 1.7, "Charleston|Columbia|Greenville|Myrtle Beach|"
                       "Hilton Head|Greer|Spartanburg"),
    "South Dakota": ("SD", 44.4, -100.2, 1.0, 3.0, "Sioux Falls|Rapid City|Pierre|Aberdeen"),
    "Tennessee": ("TN", 35.9, -86.4, 0.6, 3.5, "Nashville|Memphis|Knoxville|Chattanooga|Clarksville|"
                  "Johnson City"),
    "Texas": ("TX", 31.5, -99.3, 3.5, 4.5, "Houston|Dallas|Austin|San Antonio|El Paso|Fort Worth|"
              "Corpus Christi|Lubbock|Amarillo|Midland|Laredo|Abilene|Waco|Brownsville|McAllen|Beaumont|"
              "Killeen|San Angelo|Tyler|Galveston"),
    "Utah": ("UT", 39.3, -111.7, 2.0, 1.5, "Salt Lake City|Provo|Ogden|St. George|Moab|Cedar City|Vernal"),
    "Vermont": ("VT", 44.0, -72.7, 0.9, 0.5, "Burlington Montpelier Rutland"),
    "Virginia": ("VA", 37.5, -78.8, 0.8, 2.5, "Norfolk Richmond Roanoke Lynchburg Staunton Williamsburg"),
    "Washington": ("WA", 47.4, -120.5, 1.2, 2.8, "Seattle|Spokane|Tacoma|Bellingham|Yakima|Walla Walla|"
                   "Wenatchee|Pasco|Olympia"),
    "West Virginia": ("WV", 38.6, -80.6, 1.0, 1.3, "Morgantown Huntington Wheeling Parkersburg Beckley"),
    "Wisconsin": ("WI", 44.6, -89.9, 1.5, 2.0, "Milwaukee|Madison|Green Bay|La Crosse|Eau Claire|Appleton|"
                  "Mosinee|Rhinelander"),
    "Wyoming": ("WY", 43.0, -107.5, 1.8, 3.5, "Cheyenne|Casper|Laramie|Cody|Sheridan|Gillette|Rock Springs"),
}


def state_cities(state: str) -> list[str]:
    names = STATES[state][5]
    return names.split("|") if "|" in names else names.split()


# ------------------------------------------------------------------ name vocabularies
STAY_ADJ = ("Cozy Sunny Quiet Bright Modern Rustic Charming Spacious Airy Serene Elegant Classic Tiny "
            "Urban Leafy Breezy Stylish Homey Lovely Grand Calm Vintage Snug Chic Golden Silver Hidden "
            "Peaceful Central Scenic").split()
STAY_NOUN = ("Loft Studio Cottage Suite Cabin Bungalow Villa Flat Nook Retreat Haven Lodge Room "
             "Townhouse Hideaway Penthouse Den Chalet Annex Manor").split()
FOOD_ADJ = ("Red Blue Green Golden Silver Happy Little Big Old Lucky Royal Rustic Urban Smoky Spicy "
            "Sweet Salty Wild Sunny Copper Iron Velvet Maple Cedar Olive Pepper Basil Saffron Harbor "
            "Garden Corner Village Market Union Liberty Pioneer Summit Prairie Canyon").split()
FOOD_NOUN = ("Grill Bistro Kitchen Diner Cafe Tavern Table Spoon Fork Oven Eatery Canteen Bar Brasserie "
             "Trattoria Cantina Smokehouse Noodle Bakehouse Pantry").split()
PLACE_ADJ = ("Riverside Lakeview Hilltop Harbor Pioneer Heritage Liberty Sunset Maple Cedar Willow "
             "Granite Eagle Bison Prairie Canyon Meadow Forest Union Founders Veterans Memorial Botanical "
             "Historic Central Northern Southern Eastern Western Crystal").split()
PLACE_NOUN = ("Park Museum Garden Gallery Zoo Aquarium Square Pier Trail Monument Theater Market "
              "Observatory Library Fort Lighthouse Plaza Falls Reserve Arboretum").split()
STREETS = "Main Oak Pine Elm Maple Cedar Park Lake Hill River Washington Lincoln Jefferson".split()


# ------------------------------------------------------------------ scales
@dataclass(frozen=True)
class Scale:
    states: int | None  # None: every state in STATES
    cities_per_state: tuple[int, ...] | None  # per chosen state; None: all listed cities
    accommodations: tuple[int, int]  # per city, inclusive range
    restaurants: tuple[int, int]
    attractions: tuple[int, int]
    hubs_per_state: int  # cities connected by flights to every other hub
    hub_links: float  # probability that a hub and a non-hub are connected
    spoke_links: float  # probability that two non-hubs are connected
    hub_flights: tuple[int, int]  # flights per date between two hubs
    spoke_flights: tuple[int, int]  # flights per date on the other connected pairs
    cover_local_constraints: bool  # every city offers every room type and query cuisine
    dates: tuple[str, str] = DEFAULT_DATES


SCALES = {
    # ~14 cities in 4 neighbouring states, small tables, flights on most pairs every day
    "mini": Scale(states=4, cities_per_state=(4, 4, 3, 3), accommodations=(4, 5), restaurants=(8, 10),
                  attractions=(4, 5), hubs_per_state=2, hub_links=0.8, spoke_links=0.5,
                  hub_flights=(1, 3), spoke_flights=(1, 3), cover_local_constraints=True),
    # official proportions: 48 states, 329 cities, ~14/30/18 entities per city; flights on
    # ~6.4K directed pairs (all hub pairs, 12% of hub-spoke, 1% of spoke-spoke), ~0.27M rows
    "standard": Scale(states=None, cities_per_state=None, accommodations=(10, 18), restaurants=(22, 38),
                      attractions=(16, 20), hubs_per_state=1, hub_links=0.12, spoke_links=0.01,
                      hub_flights=(1, 3), spoke_flights=(0, 2), cover_local_constraints=False),
}


def make_scale(scale: str, **knobs) -> Scale:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    known = {f.name for f in fields(Scale)}
    for name in knobs:
        if name not in known:
            raise ValueError(f"unknown knob {name!r}; knobs are {sorted(known)}")
    return replace(SCALES[scale], **{k: tuple(v) if isinstance(v, list) else v for k, v in knobs.items()})


def date_range(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if end < start:
        raise ValueError(f"bad dates: {first} is after {last}")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


# ------------------------------------------------------------------ small helpers
def choice_weighted(rng: random.Random, table: dict):
    return rng.choices(list(table), weights=list(table.values()))[0]


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(h))


def format_km(km: float) -> str:
    """Official style: '26.4 km' below 100 km, else '1,433 km'."""
    return f"{km:.1f} km" if km < 100 else f"{round(km):,} km"


def format_drive(minutes: int) -> str:
    """Official style: '45 mins', '1 hour 5 mins', '14 hours 4 mins', '1 day 2 hours'."""
    if minutes >= 1440:
        days, hours = divmod(round(minutes / 60), 24)
        return f"{days} {'day' if days == 1 else 'days'} {hours} {'hour' if hours == 1 else 'hours'}"
    hours, mins = divmod(minutes, 60)
    tail = f"{mins} {'min' if mins == 1 else 'mins'}"
    return tail if hours == 0 else f"{hours} {'hour' if hours == 1 else 'hours'} {tail}"


def format_clock(minutes: int) -> str:
    minutes %= 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def time_zone(longitude: float | None) -> int:
    """Hours from UTC, from longitude (-74 -> -5 Eastern ... -118 -> -8 Pacific)."""
    return 0 if longitude is None else round(longitude / 15)


def substring_free(name: str, taken: list[str]) -> bool:
    return all(name not in t and t not in name for t in taken)


def unique_names(rng: random.Random, first: list[str], second: list[str], n: int) -> list[str]:
    """n distinct 'First Second' names, none a substring of another."""
    names: list[str] = []
    while len(names) < n:
        name = f"{rng.choice(first)} {rng.choice(second)}"
        if substring_free(name, names):
            names.append(name)
    return names


# ------------------------------------------------------------------ cities and roads
def pick_states(rng: random.Random, scale: Scale) -> list[str]:
    """All states, or an anchor state and its nearest neighbours with enough cities."""
    if scale.states is None:
        return list(STATES)
    sizes = list(scale.cities_per_state or [])
    sizes += [4] * (scale.states - len(sizes))
    centre = {s: (v[1], v[2]) for s, v in STATES.items()}
    anchor = rng.choice([s for s in STATES if len(state_cities(s)) >= max(sizes)])
    chosen = [anchor]
    for size in sizes[1:]:
        options = [s for s in STATES if s not in chosen and len(state_cities(s)) >= size]
        chosen.append(min(options, key=lambda s: great_circle_km(centre[anchor], centre[s])))
    return chosen


def make_cities(rng: random.Random, scale: Scale) -> tuple[dict[str, str], dict[str, tuple]]:
    """city -> state and city -> (lat, lon)."""
    cities, coords = {}, {}
    for i, state in enumerate(pick_states(rng, scale)):
        _, lat, lon, dlat, dlon, _ = STATES[state]
        names = state_cities(state)
        if scale.cities_per_state is not None:
            size = scale.cities_per_state[i] if i < len(scale.cities_per_state) else 4
            names = names[:1] + rng.sample(names[1:], min(size, len(names)) - 1)
        for name in names:
            cities[name] = state
            coords[name] = (round(lat + rng.uniform(-0.8, 0.8) * dlat, 4),
                            round(lon + rng.uniform(-0.8, 0.8) * dlon, 4))
    return cities, coords


def drive_row(rng: random.Random, gc_km: float) -> dict:
    km = max(3.0, gc_km * max(1.02, rng.gauss(ROAD_FACTOR, ROAD_FACTOR_SD)))
    minutes = max(5, round(km / rng.gauss(SPEED_KMH, SPEED_SD) * 60))
    return {"duration": format_drive(minutes), "distance": format_km(km)}


def make_distances(rng: random.Random, coords: dict) -> dict:
    """Every ordered pair; the two directions differ slightly, as in the official matrix."""
    names = list(coords)
    return {(a, b): drive_row(rng, great_circle_km(coords[a], coords[b]))
            for a in names for b in names if a != b}


# ------------------------------------------------------------------ entities
def accommodation_row(rng: random.Random, name: str, city: str, room: str | None = None,
                      short_stay: bool = False) -> dict:
    room = room or choice_weighted(rng, ROOM_TYPE_SHARES)
    rules = rng.sample(HOUSE_RULES, choice_weighted(rng, RULE_COUNTS))
    nights = rng.choice((1, 2)) if short_stay else choice_weighted(rng, MIN_NIGHTS)
    return {"NAME": name, "price": float(rng.randint(*PRICE_RANGE)), "room type": room,
            "house_rules": " & ".join(f"No {r}" for r in rules), "minimum nights": float(nights),
            "maximum occupancy": choice_weighted(rng, OCCUPANCY[room]),
            "review rate number": choice_weighted(rng, REVIEW_RATES), "city": city}


def make_accommodations(rng: random.Random, city: str, n: int, cover: bool) -> list[dict]:
    """With `cover`, the first rows offer each room type for a two-night stay."""
    names = unique_names(rng, STAY_ADJ, STAY_NOUN, n)
    fixed = list(ROOM_TYPE_SHARES) if cover else []
    return [accommodation_row(rng, name, city, fixed[i] if i < len(fixed) else None, i < len(fixed))
            for i, name in enumerate(names)]


def draw_cuisines(rng: random.Random) -> list[str]:
    pool = list(QUERY_CUISINES) + list(OTHER_CUISINES)
    weights = [CUISINE_WEIGHTS[0]] * len(QUERY_CUISINES) + [CUISINE_WEIGHTS[1]] * len(OTHER_CUISINES)
    picked: list[str] = []
    for _ in range(choice_weighted(rng, CUISINE_COUNTS)):
        i = rng.choices(range(len(pool)), weights=weights)[0]
        picked.append(pool.pop(i))
        weights.pop(i)
    return picked


def restaurant_row(rng: random.Random, name: str, city: str) -> dict:
    cost = rng.randint(*COST_RANGE) if rng.random() > COST_TAIL[0] else rng.randint(COST_RANGE[1],
                                                                                     COST_TAIL[1])
    rating = 0.0 if rng.random() < RATING_ZERO else round(min(4.9, max(1.8, rng.gauss(RATING_MEAN,
                                                                                       RATING_SD))), 1)
    return {"Name": name, "Average Cost": cost, "Cuisines": ", ".join(draw_cuisines(rng)),
            "Aggregate Rating": rating, "City": city}


def make_restaurants(rng: random.Random, city: str, n: int, cover: bool) -> list[dict]:
    """With `cover`, every query cuisine appears in the city."""
    rows = [restaurant_row(rng, name, city) for name in unique_names(rng, FOOD_ADJ, FOOD_NOUN, n)]
    listed = {c for r in rows for c in r["Cuisines"].split(", ")}
    for cuisine in QUERY_CUISINES if cover else ():
        if cuisine not in listed:
            row = rng.choice([r for r in rows if r["Cuisines"].count(",") < 5] or rows)
            row["Cuisines"] += f", {cuisine}"
    return rows


def make_attractions(rng: random.Random, city: str, state: str, where: tuple, n: int) -> list[dict]:
    abbr = STATES[state][0]
    rows = []
    for name in unique_names(rng, PLACE_ADJ, PLACE_NOUN, n):
        slug = name.lower().replace(" ", "")
        rows.append({"Name": name, "Latitude": round(where[0] + rng.uniform(-0.05, 0.05), 6),
                     "Longitude": round(where[1] + rng.uniform(-0.05, 0.05), 6),
                     "Address": f"{rng.randint(1, 9999)} {rng.choice(STREETS)} St, {city}, {abbr} "
                                f"{rng.randint(10000, 99999)}, USA",
                     "Phone": f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
                     "Website": f"https://www.{slug}.com", "City": city})
    return rows


# ------------------------------------------------------------------ flights
def connected_pairs(rng: random.Random, cities: dict, scale: Scale) -> list[tuple[str, str, bool]]:
    """Unordered pairs with flights, flagged when both ends are hubs."""
    hubs = set()
    for state in dict.fromkeys(cities.values()):
        hubs.update([c for c in cities if cities[c] == state][:scale.hubs_per_state])
    names = list(cities)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = a in hubs and b in hubs
            p = 1.0 if both else scale.hub_links if (a in hubs or b in hubs) else scale.spoke_links
            if rng.random() < p:
                pairs.append((a, b, both))
    return pairs


def flight_rows(np_rng: np.random.Generator, org: str, dest: str, miles: float, counts: np.ndarray,
                dates: list[str], zone_shift: int, numbers: Iterator[str]) -> list[dict]:
    """Flights org -> dest: counts[i] flights on dates[i]."""
    n = int(counts.sum())
    if n == 0:
        return []
    prices = np.maximum(FLIGHT_PRICE_MIN, np.round(FLIGHT_PRICE_PER_MILE * miles * np.exp(
        np_rng.normal(0, FLIGHT_PRICE_LOG_SD, n)))).astype(int)
    minutes = np.maximum(25, np.round(FLIGHT_MIN_PER_MILE * miles + FLIGHT_MIN_BASE
                                      + np_rng.normal(0, FLIGHT_MIN_SD, n))).astype(int)
    hours = np_rng.choice(24, size=n, p=np.array(DEPARTURE_HOURS) / sum(DEPARTURE_HOURS))
    departs = hours * 60 + np_rng.integers(0, 60, n)
    day_of = np.repeat(np.arange(len(dates)), counts)
    rows = []
    for k in range(n):
        dep, dur = int(departs[k]), int(minutes[k])
        rows.append({"Flight Number": next(numbers), "Price": int(prices[k]), "DepTime": format_clock(dep),
                     "ArrTime": format_clock(dep + dur + 60 * zone_shift),
                     "ActualElapsedTime": f"{dur // 60} hours {dur % 60} minutes",
                     "FlightDate": dates[day_of[k]], "OriginCityName": org, "DestCityName": dest,
                     "Distance": float(round(miles))})
    return rows


def flight_numbers(rng: random.Random) -> Iterator[str]:
    """Unique 'F' + 7 digits, from a random start."""
    n = rng.randint(1_000_000, 3_000_000)
    while True:
        yield f"F{n:07d}"
        n += 1


def make_flights(seed: int, pairs: list[tuple[str, str, int, int, float]], dates: list[str],
                 zones: dict) -> list[dict]:
    """pairs: (org, dest, lo, hi, miles) -> flights per date drawn uniformly in lo..hi, both ways."""
    np_rng = np.random.default_rng(seed)
    numbers = flight_numbers(random.Random(seed))
    rows = []
    for a, b, lo, hi, miles in pairs:
        for org, dest in ((a, b), (b, a)):
            counts = np_rng.integers(lo, hi + 1, len(dates))
            rows += flight_rows(np_rng, org, dest, miles, counts, dates, zones.get(dest, 0)
                                - zones.get(org, 0), numbers)
    return rows


# ------------------------------------------------------------------ worlds
def generate_world(scale: str = "mini", seed: int = 0, **knobs) -> Database:
    """A synthetic TravelPlanner database; same scale, knobs and seed give the same world."""
    spec = make_scale(scale, **knobs)
    dates = date_range(*spec.dates)
    rng = random.Random(f"tp-world-{scale}-{seed}")
    cities, coords = make_cities(rng, spec)
    distances = make_distances(rng, coords)
    accommodations, restaurants, attractions = [], [], []
    for city, state in cities.items():
        cover = spec.cover_local_constraints
        accommodations += make_accommodations(rng, city, rng.randint(*spec.accommodations), cover)
        restaurants += make_restaurants(rng, city, rng.randint(*spec.restaurants), cover)
        attractions += make_attractions(rng, city, state, coords[city], rng.randint(*spec.attractions))
    pairs = []
    for a, b, both in connected_pairs(rng, cities, spec):
        lo, hi = spec.hub_flights if both else spec.spoke_flights
        pairs.append((a, b, lo, hi, great_circle_km(coords[a], coords[b]) / KM_PER_MILE))
    flights = make_flights(rng.randrange(2**32), pairs, dates,
                           {c: time_zone(lon) for c, (_, lon) in coords.items()})
    return Database(cities=cities, flights=flights, accommodations=accommodations,
                    restaurants=restaurants, attractions=attractions, distances=distances)


def city_coordinates(db: Database) -> dict[str, tuple[float, float]]:
    """City -> median attraction (lat, lon), for the cities that have attractions."""
    points: dict[str, list] = {}
    for row in db.attractions:
        points.setdefault(row["City"], []).append((row["Latitude"], row["Longitude"]))
    return {c: (float(np.median([p[0] for p in v])), float(np.median([p[1] for p in v])))
            for c, v in points.items()}


def official_world(db_dir: str | Path, seed: int = 0, dates: tuple[str, str] = DEFAULT_DATES,
                   pair_fraction: float = 0.15, flights_per_day: tuple[int, int] = (1, 3)) -> Database:
    """The official tables plus generated flights, in the official flight schema and the
    real price/time distributions, on a random `pair_fraction` of the (unordered) city
    pairs of the official distance matrix that are at least 150 road-km apart
    (0.15 of ~8K pairs at 2 flights a day: ~0.15M rows for March)."""
    db = Database.load(db_dir, flights=[])
    rng = random.Random(f"tp-official-{seed}")
    coords = city_coordinates(db)
    seen, pairs = set(), []
    for (a, b) in sorted(db.distances):
        row = db.route(a, b)
        if row is None or frozenset((a, b)) in seen or a not in db.cities or b not in db.cities:
            continue
        seen.add(frozenset((a, b)))
        km = km_of(row["distance"])
        if km < 150 or rng.random() >= pair_fraction:
            continue
        gc = great_circle_km(coords[a], coords[b]) if a in coords and b in coords else km / ROAD_FACTOR
        pairs.append((a, b, flights_per_day[0], flights_per_day[1], gc / KM_PER_MILE))
    zones = {c: time_zone(lon) for c, (_, lon) in coords.items()}
    db.flights = make_flights(rng.randrange(2**32), pairs, date_range(*dates), zones)
    db.reindex()
    return db
