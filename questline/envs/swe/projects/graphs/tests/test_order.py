import pytest
from graphs.build import from_edges
from graphs.order import (
    connected_components,
    has_cycle,
    is_connected,
    levels,
    topological_sort,
)

DRESSING = [
    ("shirt", "tie"),
    ("tie", "jacket"),
    ("trousers", "shoes"),
    ("trousers", "belt"),
    ("belt", "jacket"),
    ("shirt", "belt"),
    ("socks", "shoes"),
]


def test_topological_sort_breaks_ties_alphabetically():
    graph = from_edges(DRESSING, directed=True)
    expected = ["shirt", "socks", "tie", "trousers", "belt", "jacket", "shoes"]
    assert topological_sort(graph) == expected


def test_topological_sort_rejects_cycle():
    with pytest.raises(ValueError):
        topological_sort(from_edges([("a", "b"), ("b", "c"), ("c", "b")], directed=True))


def test_has_cycle_false_for_dag():
    assert has_cycle(from_edges(DRESSING, directed=True)) is False


def test_has_cycle_true_for_self_loop():
    assert has_cycle(from_edges([("a", "b"), ("b", "b")], directed=True)) is True


def test_levels_use_longest_chain():
    graph = from_edges(DRESSING, directed=True)
    assert levels(graph) == {
        "shirt": 0,
        "tie": 1,
        "jacket": 2,
        "trousers": 0,
        "shoes": 1,
        "belt": 1,
        "socks": 0,
    }


def test_connected_components_are_sorted():
    graph = from_edges([("e", "d"), ("b", "a"), ("c", "a")], nodes=("z",))
    assert connected_components(graph) == [["a", "b", "c"], ["d", "e"], ["z"]]


def test_is_connected_false_with_isolated_node():
    assert is_connected(from_edges([("a", "b")], nodes=("c",))) is False


def test_is_connected_true_for_single_component():
    assert is_connected(from_edges([("a", "b"), ("b", "c")])) is True
