"""Parameter / FLOP / byte / latency / memory measurement (honest efficiency)."""

from tradeoffs.efficiency.cost import compiled_cost
from tradeoffs.efficiency.cost import sparse_flops
from tradeoffs.efficiency.cost import weight_op_flops
from tradeoffs.efficiency.counting import compression_ratio
from tradeoffs.efficiency.counting import nonzero_count
from tradeoffs.efficiency.counting import param_count
from tradeoffs.efficiency.counting import weight_bytes
from tradeoffs.efficiency.latency import measure_latency
from tradeoffs.efficiency.measure import batch_of
from tradeoffs.efficiency.measure import measure
from tradeoffs.efficiency.ensemble import measure_ensemble
