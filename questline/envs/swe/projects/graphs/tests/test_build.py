import pytest
from graphs.build import add_edge, degree, edge_list, from_edges, parse_edges

EDGES = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("f", "g")]


def test_add_edge_undirected_adds_both_directions():
    graph = {}
    add_edge(graph, "b", "a")
    assert graph == {"b": ["a"], "a": ["b"]}


def test_add_edge_rejects_undirected_self_loop():
    with pytest.raises(ValueError):
        add_edge({}, "a", "a")


def test_add_edge_keeps_neighbours_sorted_and_unique():
    graph = {}
    for target in ["c", "b", "c"]:
        add_edge(graph, "a", target)
    assert graph["a"] == ["b", "c"]


def test_from_edges_keeps_isolated_nodes():
    assert from_edges([("x", "y")], True, ("z",)) == {"z": [], "x": ["y"], "y": []}


def test_parse_edges_skips_empty_items():
    assert parse_edges("a-b, ,b - c,") == [("a", "b"), ("b", "c")]


def test_parse_edges_rejects_missing_endpoint():
    with pytest.raises(ValueError):
        parse_edges("a-b, -c")


def test_parse_edges_rejects_chained_edge():
    with pytest.raises(ValueError):
        parse_edges("a-b-c")


def test_edge_list_lists_undirected_edges_once():
    graph = from_edges([("b", "a"), ("c", "b")])
    assert edge_list(graph) == [("a", "b"), ("b", "c")]


def test_edge_list_directed_lists_every_edge():
    graph = from_edges([("b", "a"), ("c", "b")], directed=True)
    assert edge_list(graph, directed=True) == [("b", "a"), ("c", "b")]


def test_degree_counts_neighbours():
    assert degree(from_edges(EDGES), "d") == 3


def test_degree_rejects_unknown_node():
    with pytest.raises(ValueError):
        degree(from_edges(EDGES), "z")
