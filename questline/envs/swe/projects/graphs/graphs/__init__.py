"""Adjacency-list graphs: building, searching, ordering and routing."""

from graphs.build import (
    Graph,
    add_edge,
    add_node,
    degree,
    edge_list,
    from_edges,
    parse_edges,
)
from graphs.order import (
    connected_components,
    has_cycle,
    in_degrees,
    is_connected,
    levels,
    topological_sort,
)
from graphs.routing import (
    WeightedGraph,
    build_order,
    build_stages,
    cheapest_route,
    nearest,
    next_hops,
    route,
    route_cost,
    route_via,
    weighted_graph,
)
from graphs.search import (
    bfs_order,
    dfs_order,
    hop_distances,
    reachable,
    shortest_path,
)

__all__ = [
    "Graph",
    "WeightedGraph",
    "add_edge",
    "add_node",
    "bfs_order",
    "build_order",
    "build_stages",
    "cheapest_route",
    "connected_components",
    "degree",
    "dfs_order",
    "edge_list",
    "from_edges",
    "has_cycle",
    "hop_distances",
    "in_degrees",
    "is_connected",
    "levels",
    "nearest",
    "next_hops",
    "parse_edges",
    "reachable",
    "route",
    "route_cost",
    "route_via",
    "shortest_path",
    "topological_sort",
    "weighted_graph",
]
