"""Trade-off records, Pareto frontiers, plots and the report."""

from tradeoffs.report.records import append_records
from tradeoffs.report.records import load_records
from tradeoffs.report.records import make_record
