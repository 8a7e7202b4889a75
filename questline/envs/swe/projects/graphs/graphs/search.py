"""Graph traversal: breadth-first and depth-first orders, hop distances, shortest paths."""

from collections import deque

from graphs.build import Graph


def _require_node(graph: Graph, node: str) -> None:
    """Raise ValueError when node is not in the graph."""
    if node not in graph:
        raise ValueError(f"unknown node {node!r}")


def bfs_order(graph: Graph, start: str) -> list[str]:
    """Return the nodes reachable from start in breadth-first order."""
    _require_node(graph, start)
    seen = {start}
    order = []
    queue = deque([start])
    while queue:
        node = queue.popleft()
        order.append(node)
        for neighbour in graph[node]:
            if neighbour not in seen:
                seen.add(neighbour)
                queue.append(neighbour)
    return order


def dfs_order(graph: Graph, start: str) -> list[str]:
    """Return the nodes reachable from start in depth-first preorder (neighbours in order)."""
    _require_node(graph, start)
    seen: set[str] = set()
    order = []
    stack = [start]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        stack.extend(reversed(graph[node]))
    return order


def reachable(graph: Graph, start: str) -> set[str]:
    """Return every node reachable from start, start included."""
    return set(dfs_order(graph, start))


def hop_distances(graph: Graph, start: str, max_hops: int | None = None) -> dict[str, int]:
    """Return the number of edges on a shortest path from start to each reachable node."""
    _require_node(graph, start)
    distances = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if max_hops is not None and distances[node] >= max_hops:
            continue
        for neighbour in graph[node]:
            if neighbour not in distances:
                distances[neighbour] = distances[node] + 1
                queue.append(neighbour)
    return distances


def _unwind(parents: dict[str, str | None], goal: str) -> list[str]:
    """Follow parent links back from goal and return the path from the root."""
    path = []
    node: str | None = goal
    while node is not None:
        path.append(node)
        node = parents[node]
    return path[::-1]


def shortest_path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """Return a path with the fewest edges from start to goal, or None if there is none."""
    _require_node(graph, start)
    _require_node(graph, goal)
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            return _unwind(parents, goal)
        for neighbour in graph[node]:
            if neighbour not in parents:
                parents[neighbour] = node
                queue.append(neighbour)
    return None
