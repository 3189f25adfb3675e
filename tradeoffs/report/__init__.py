"""Trade-off records, Pareto frontiers, plots and the report."""

from tradeoffs.report.pareto import available_axes
from tradeoffs.report.pareto import frontier
from tradeoffs.report.pareto import get_path
from tradeoffs.report.pareto import pareto_front
from tradeoffs.report.ledger import choose_reference
from tradeoffs.report.ledger import trade_entry
from tradeoffs.report.records import RecordError
from tradeoffs.report.records import SCHEMA_VERSION
from tradeoffs.report.records import append_records
from tradeoffs.report.records import load_records
from tradeoffs.report.records import make_record
from tradeoffs.report.records import read_records
from tradeoffs.report.records import to_dataframe
from tradeoffs.report.records import validate_record
from tradeoffs.report.write import write_report
