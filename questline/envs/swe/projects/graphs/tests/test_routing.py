import pytest
from graphs.build import from_edges
from graphs.routing import (
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

EDGES = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("f", "g")]
ROADS = [("a", "b", 4), ("a", "c", 1), ("c", "b", 2), ("b", "d", 5), ("c", "d", 8)]


def test_route_without_avoid_is_shortest_path():
    assert route(from_edges(EDGES), "a", "e") == ["a", "b", "d", "e"]


def test_route_goes_around_avoided_node():
    assert route(from_edges(EDGES), "a", "e", avoid=("b",)) == ["a", "c", "d", "e"]


def test_route_none_when_goal_is_avoided():
    assert route(from_edges(EDGES), "a", "e", avoid=("e",)) is None


def test_route_via_joins_legs_without_repeating_stops():
    assert route_via(from_edges(EDGES), ["b", "c", "e"]) == ["b", "a", "c", "d", "e"]


def test_route_via_none_when_a_leg_is_impossible():
    assert route_via(from_edges(EDGES), ["a", "f"]) is None


def test_route_via_rejects_single_stop():
    with pytest.raises(ValueError):
        route_via(from_edges(EDGES), ["a"])


def test_next_hops_gives_first_step_to_each_destination():
    assert next_hops(from_edges(EDGES), "a") == {"b": "b", "c": "c", "d": "b", "e": "b"}


def test_next_hops_leaves_out_unreachable_nodes():
    graph = from_edges([("a", "b"), ("b", "c"), ("d", "a")], directed=True)
    assert next_hops(graph, "a") == {"b": "b", "c": "b"}


def test_nearest_breaks_ties_alphabetically():
    assert nearest(from_edges(EDGES), "d", ["e", "c", "a"]) == "c"


def test_nearest_none_when_no_candidate_is_reachable():
    assert nearest(from_edges(EDGES), "a", ["f", "g"]) is None


def test_weighted_graph_is_undirected_by_default():
    assert weighted_graph([("a", "b", 0)]) == {"a": {"b": 0}, "b": {"a": 0}}


def test_weighted_graph_rejects_negative_cost():
    with pytest.raises(ValueError):
        weighted_graph([("a", "b", 2), ("b", "c", -1)])


def test_cheapest_route_prefers_cheaper_detour():
    assert cheapest_route(weighted_graph(ROADS), "a", "d") == (8, ["a", "c", "b", "d"])


def test_cheapest_route_none_when_unreachable():
    assert cheapest_route(weighted_graph(ROADS, directed=True), "d", "a") is None


def test_route_cost_sums_edge_costs():
    assert route_cost(weighted_graph(ROADS), ["a", "c", "b", "d"]) == 8


def test_route_cost_rejects_missing_edge():
    with pytest.raises(ValueError):
        route_cost(weighted_graph(ROADS), ["a", "d"])


def test_build_order_puts_prerequisites_first():
    deps = {"app": ["lib", "config"], "lib": ["core"], "config": [], "core": []}
    assert build_order(deps) == ["config", "core", "lib", "app"]


def test_build_order_rejects_circular_dependencies():
    with pytest.raises(ValueError):
        build_order({"a": ["b"], "b": ["a"]})


def test_build_stages_start_with_tasks_without_prerequisites():
    assert build_stages({"b": ["a"], "c": [], "a": []}) == [["a", "c"], ["b"]]


def test_build_stages_group_independent_tasks():
    deps = {"app": ["lib", "config"], "lib": ["core"], "config": [], "core": []}
    assert build_stages(deps) == [["config", "core"], ["lib"], ["app"]]
