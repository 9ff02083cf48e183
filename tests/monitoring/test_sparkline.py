"""Sparklines: drawn from the process's first point, broken where a figure is missing."""

from __future__ import annotations

from monitoring.templatetags.sparkline_tags import sparkline


def test_a_line_starts_at_the_first_point_and_breaks_at_gaps() -> None:
    svg = sparkline([None, None, 1.0, 2.0, None, 4.0, 3.0], "CPU", "%")
    assert svg.count("<polyline") == 2  # two runs of points around the gap
    assert 'points="0.0,' in svg  # the first point is at the left edge
    assert 'aria-label="CPU: from 1% to 4%, now 3%"' in svg


def test_too_few_points_say_so_instead_of_drawing() -> None:
    assert "no history yet" in sparkline([None, None], "CPU")
    assert "1 point so far" in sparkline([None, 5.0], "CPU")
