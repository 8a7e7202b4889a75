import pytest
from stats.report import format_summary, outliers, summarize, text_histogram, trend


def test_summarize_rounds_to_two_digits_by_default():
    assert summarize([1, 2, 3, 4, 10]) == {
        "count": 5,
        "min": 1,
        "max": 10,
        "mean": 4.0,
        "median": 3,
        "q1": 2.0,
        "q3": 4.0,
        "stdev": 3.54,
    }


def test_summarize_single_value_has_zero_stdev():
    assert summarize([7])["stdev"] == 0.0


def test_summarize_of_two_values_has_sample_stdev():
    assert summarize([1, 3])["stdev"] == 1.41


def test_summarize_rejects_empty_data():
    with pytest.raises(ValueError, match="summarize"):
        summarize([])


def test_outliers_keep_value_exactly_on_the_fence():
    assert outliers([-3.5, 1, 2, 3, 4, 5, 6, 10.5]) == []


def test_outliers_with_smaller_factor():
    assert outliers([1, 2, 3, 4, 5, 8], factor=1.0) == [8]


def test_format_summary_shows_integers_without_decimals():
    assert format_summary({"count": 3, "mean": 2.5}) == "count: 3\nmean: 2.50"


def test_format_summary_with_one_digit():
    assert format_summary({"stdev": 0.26}, digits=1) == "stdev: 0.3"


def test_text_histogram_scales_fullest_bin_to_width():
    assert text_histogram([1, 2, 2, 3, 3, 3, 9]) == [
        "1-3 | 3 ##########",
        "3-5 | 3 ##########",
        "5-7 | 0",
        "7-9 | 1 ###",
    ]


def test_text_histogram_of_constant_data_spans_one_unit():
    assert text_histogram([2, 2, 2], count=2, width=4) == ["2-2.5 | 3 ####", "2.5-3 | 0"]


def test_trend_rising():
    assert trend([1, 2, 3, 4]) == "rising"


def test_trend_falling():
    assert trend([4, 3, 2, 1]) == "falling"


def test_trend_of_constant_data_is_flat():
    assert trend([5, 5, 5, 5]) == "flat"


def test_trend_of_too_short_data_is_flat():
    assert trend([2, 1]) == "flat"
