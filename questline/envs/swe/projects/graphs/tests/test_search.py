import pytest
from graphs.build import from_edges
from graphs.search import (
    bfs_order,
    dfs_order,
    hop_distances,
    shortest_path,
)

EDGES = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("f", "g")]


def test_bfs_order_visits_nodes_level_by_level():
    assert bfs_order(from_edges(EDGES), "a") == ["a", "b", "c", "d", "e"]


def test_bfs_order_rejects_unknown_start():
    with pytest.raises(ValueError):
        bfs_order(from_edges(EDGES), "z")


def test_dfs_order_goes_deep_before_wide():
    assert dfs_order(from_edges(EDGES), "a") == ["a", "b", "d", "c", "e"]


def test_hop_distances_stop_at_max_hops():
    assert hop_distances(from_edges(EDGES), "a", 2) == {"a": 0, "b": 1, "c": 1, "d": 2}


def test_shortest_path_uses_fewest_edges():
    assert shortest_path(from_edges(EDGES), "a", "e") == ["a", "b", "d", "e"]


def test_shortest_path_rejects_unknown_goal():
    with pytest.raises(ValueError):
        shortest_path(from_edges(EDGES), "a", "z")
