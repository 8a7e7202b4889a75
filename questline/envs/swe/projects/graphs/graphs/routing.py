"""Routing on top of the graph modules: constrained routes, routing tables, costs, builds."""

import heapq

from graphs.build import Graph, from_edges
from graphs.order import levels, topological_sort
from graphs.search import hop_distances, shortest_path

WeightedGraph = dict[str, dict[str, int]]


def route(graph: Graph, start: str, goal: str, avoid: tuple[str, ...] = ()) -> list[str] | None:
    """Return a shortest path from start to goal that does not pass through avoided nodes."""
    if start in avoid or goal in avoid:
        return None
    allowed = {
        node: [other for other in neighbours if other not in avoid]
        for node, neighbours in graph.items()
        if node not in avoid
    }
    return shortest_path(allowed, start, goal)


def route_via(graph: Graph, stops: list[str]) -> list[str] | None:
    """Return a shortest path visiting the stops in order, or None if a leg is impossible."""
    if len(stops) < 2:
        raise ValueError("a route needs at least two stops")
    path = [stops[0]]
    for source, target in zip(stops, stops[1:]):
        leg = shortest_path(graph, source, target)
        if leg is None:
            return None
        path.extend(leg[1:])
    return path


def next_hops(graph: Graph, source: str) -> dict[str, str]:
    """Return a routing table: each reachable destination maps to the first hop towards it."""
    table = {}
    for destination in sorted(hop_distances(graph, source)):
        if destination != source:
            table[destination] = shortest_path(graph, source, destination)[1]
    return table


def nearest(graph: Graph, start: str, candidates: list[str]) -> str | None:
    """Return the reachable candidate with the fewest hops (ties: alphabetical), or None."""
    distances = hop_distances(graph, start)
    found = [candidate for candidate in candidates if candidate in distances]
    if not found:
        return None
    return min(found, key=lambda candidate: (distances[candidate], candidate))


def weighted_graph(edges: list[tuple[str, str, int]], directed: bool = False) -> WeightedGraph:
    """Build a weighted graph from (source, target, cost) triples with non-negative costs."""
    graph: WeightedGraph = {}
    for source, target, cost in edges:
        if cost < 0:
            raise ValueError(f"negative cost on {source}-{target}")
        graph.setdefault(source, {})[target] = cost
        graph.setdefault(target, {})
        if not directed:
            graph[target][source] = cost
    return graph


def cheapest_route(graph: WeightedGraph, start: str, goal: str) -> tuple[int, list[str]] | None:
    """Return (cost, path) of a cheapest route using Dijkstra's algorithm, or None."""
    queue = [(0, [start])]
    done: set[str] = set()
    while queue:
        cost, path = heapq.heappop(queue)
        node = path[-1]
        if node == goal:
            return cost, path
        if node in done:
            continue
        done.add(node)
        for neighbour, step in graph.get(node, {}).items():
            if neighbour not in done:
                heapq.heappush(queue, (cost + step, [*path, neighbour]))
    return None


def route_cost(graph: WeightedGraph, path: list[str]) -> int:
    """Return the total cost of following path; every step must be an edge."""
    total = 0
    for source, target in zip(path, path[1:]):
        if target not in graph.get(source, {}):
            raise ValueError(f"no edge {source}-{target}")
        total += graph[source][target]
    return total


def _dependency_graph(dependencies: dict[str, list[str]]) -> Graph:
    """Turn {task: [prerequisites]} into a directed graph prerequisite -> task."""
    edges = [(before, task) for task, befores in dependencies.items() for before in befores]
    return from_edges(edges, True, tuple(dependencies))


def build_order(dependencies: dict[str, list[str]]) -> list[str]:
    """Order tasks so each one comes after all of its prerequisites."""
    return topological_sort(_dependency_graph(dependencies))


def build_stages(dependencies: dict[str, list[str]]) -> list[list[str]]:
    """Group tasks into stages that can run in parallel, in stage order."""
    level = levels(_dependency_graph(dependencies))
    stages: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for task in sorted(level):
        stages[level[task]].append(task)
    return stages
