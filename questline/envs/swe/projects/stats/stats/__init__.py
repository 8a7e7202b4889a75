"""Descriptive statistics: central tendency, spread, binning and text reports."""

from stats.binning import (
    bin_edges,
    bin_index,
    data_bounds,
    histogram,
    moving_average,
)
from stats.central import mean, median, mode, modes, trimmed_mean, weighted_mean
from stats.report import format_summary, outliers, summarize, text_histogram, trend
from stats.spread import data_range, iqr, percentile, quartiles, stdev, variance, z_scores

__all__ = [
    "bin_edges",
    "bin_index",
    "data_bounds",
    "data_range",
    "format_summary",
    "histogram",
    "iqr",
    "mean",
    "median",
    "mode",
    "modes",
    "moving_average",
    "outliers",
    "percentile",
    "quartiles",
    "stdev",
    "summarize",
    "text_histogram",
    "trend",
    "trimmed_mean",
    "variance",
    "weighted_mean",
    "z_scores",
]
