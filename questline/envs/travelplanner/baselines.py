"""A random baseline plan: well-formed, on a plausible route, with entities drawn at
random from the database (so some constraints pass by chance, most do not)."""

from __future__ import annotations

import random

from questline.envs.travelplanner.database import Database


def travel_days(days: int, n_cities: int) -> list[int]:
    """0-based days that change city: the first day, every second day, the last day."""
    return [2 * k for k in range(n_cities)] + [days - 1]


def random_plan(db: Database, query: dict, rng: random.Random) -> list[dict]:
    org, days, n = query["org"], query["days"], query["visiting_city_number"]
    if days == 3:
        stops = [query["dest"]]
    else:
        pool = [c for c in db.cities_in(query["dest"]) if c != org] or list(db.cities)
        stops = rng.sample(pool, min(n, len(pool)))
    route = [org] + stops + [org]
    moves = dict(zip(travel_days(days, len(stops)), zip(route, route[1:])))
    plan, city = [], org
    pick = lambda rows: rng.choice(rows) if rows else None  # noqa: E731
    for d in range(days):
        day = {"days": d + 1}
        if d in moves:
            a, b = moves[d]
            flight = pick(db.flights_on(a, b, query["date"][d]))
            day["current_city"] = f"from {a} to {b}"
            day["transportation"] = (
                f"Flight Number: {flight['Flight Number']}, from {a} to {b}, Departure Time: "
                f"{flight['DepTime']}, Arrival Time: {flight['ArrTime']}" if flight
                else f"Self-driving, from {a} to {b}")
            city = b
        else:
            day["current_city"], day["transportation"] = city, "-"
        here = city if city != org else (moves.get(d, (city,))[0])
        for meal in ("breakfast", "lunch", "dinner"):
            row = pick(db.restaurants_in(here))
            day[meal] = f"{row['Name']}, {here}" if row else "-"
        row = pick(db.attractions_in(here))
        day["attraction"] = f"{row['Name']}, {here};" if row else "-"
        row = pick(db.accommodations_in(here))
        day["accommodation"] = f"{row['NAME']}, {here}" if row and d < days - 1 else "-"
        plan.append(day)
    return plan
