"""Ordering and structure: topological sort, cycle detection, levels and components."""

import heapq

from graphs.build import Graph
from graphs.search import reachable


def in_degrees(graph: Graph) -> dict[str, int]:
    """Return the number of incoming edges of every node."""
    counts = {node: 0 for node in graph}
    for node in graph:
        for target in graph[node]:
            counts[target] += 1
    return counts


def topological_sort(graph: Graph) -> list[str]:
    """Order the nodes so every edge points forward; ties go to the alphabetically first node.

    Raises ValueError when the graph contains a cycle.
    """
    remaining = in_degrees(graph)
    ready = [node for node, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for target in graph[node]:
            remaining[target] -= 1
            if remaining[target] == 0:
                heapq.heappush(ready, target)
    if len(order) < len(graph):
        raise ValueError("graph contains a cycle")
    return order


def has_cycle(graph: Graph) -> bool:
    """Return True when the directed graph contains a cycle."""
    try:
        topological_sort(graph)
    except ValueError:
        return True
    return False


def levels(graph: Graph) -> dict[str, int]:
    """Return each node's level in a DAG: 0 for sources, else 1 + the deepest predecessor."""
    level = {node: 0 for node in graph}
    for node in topological_sort(graph):
        for target in graph[node]:
            level[target] = max(level[target], level[node] + 1)
    return level


def connected_components(graph: Graph) -> list[list[str]]:
    """Return the components of an undirected graph, each sorted, ordered by first node."""
    seen: set[str] = set()
    components = []
    for node in sorted(graph):
        if node in seen:
            continue
        component = reachable(graph, node)
        seen |= component
        components.append(sorted(component))
    return components


def is_connected(graph: Graph) -> bool:
    """Return True when the undirected graph has at most one component."""
    return len(connected_components(graph)) <= 1
