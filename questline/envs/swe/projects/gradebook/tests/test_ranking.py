import pytest
from gradebook.ranking import dense_rank, percentile_rank, rank, top_n


def test_rank_ties_share_place_and_skip_next():
    scores = {"cat": 90, "bob": 85, "ann": 90, "eve": 70, "dan": 70}
    assert rank(scores) == [
        (1, "ann", 90),
        (1, "cat", 90),
        (3, "bob", 85),
        (4, "dan", 70),
        (4, "eve", 70),
    ]


def test_dense_rank_does_not_skip_places():
    assert dense_rank({"a": 10, "b": 9, "c": 9, "d": 8}) == {"a": 1, "b": 2, "c": 2, "d": 3}


def test_dense_rank_all_equal():
    assert dense_rank({"a": 5, "b": 5}) == {"a": 1, "b": 1}


def test_top_n_defaults_to_three():
    assert top_n({"a": 10, "b": 9, "c": 8, "d": 7}) == ["a", "b", "c"]


def test_top_n_keeps_ties_at_cut_off():
    assert top_n({"a": 10, "b": 10, "c": 9}, 1) == ["a", "b"]


def test_top_n_rejects_zero():
    with pytest.raises(ValueError):
        top_n({"a": 1}, 0)


def test_percentile_rank_counts_equal_as_half():
    assert percentile_rank([10, 20, 30, 40], 30) == 62.5


def test_percentile_rank_rejects_empty_values():
    with pytest.raises(ValueError):
        percentile_rank([], 5)
