"""tradeoffs.report.figures: which points of a crowded scatter get a name."""

from tradeoffs.report import figures


def test_headline_labels_skip_points_that_would_overprint():
  # Priority order: (10, 5) is inside (0, 0)'s box; (100, 5) is far in x, (10, 20) in y.
  points = [(0.0, 0.0), (10.0, 5.0), (100.0, 5.0), (10.0, 20.0)]
  assert figures.spaced_labels(points, min_dx=70.0, min_dy=11.0) == [0, 2, 3]
  # The box is open: exactly min_dx or min_dy away is far enough, just inside is not.
  assert figures.spaced_labels([(0, 0), (70, 0)], min_dx=70.0, min_dy=11.0) == [0, 1]
  assert figures.spaced_labels([(0, 0), (0, 11)], min_dx=70.0, min_dy=11.0) == [0, 1]
  assert figures.spaced_labels([(0, 0), (-69.9, 10.9)], min_dx=70.0, min_dy=11.0) == [0]
  assert figures.spaced_labels([], min_dx=70.0, min_dy=11.0) == []
