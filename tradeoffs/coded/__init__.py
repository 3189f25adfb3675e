"""Coded and encoded optimization against stragglers (see DESIGN.md, PAPERS.md section 2).

Encodings (`encode`, `encoding_matrix`, `fwht`), straggler models (`sample_delays`,
`expected_kth_delay`), problems (`make_problem`, `synthetic_problem`, `optimum`),
optimizers that use the k fastest of m workers (`encode_problem`,
`gradient_code_problem`, `simulate`, `run`), gradient codes, diagnostics (block-RIP,
error floor, time to epsilon: first dip or `time_to_stay_below`), and real executors
(`tradeoffs.coded.executors`, Ray or a process pool). The study that sweeps them is
`tradeoffs.studies.coded_optimization`; this package imports no other tradeoffs package.
"""

from tradeoffs.coded.diagnostics import block_rip_epsilon
from tradeoffs.coded.diagnostics import block_rip_spectrum
from tradeoffs.coded.diagnostics import coherence
from tradeoffs.coded.diagnostics import error_floor
from tradeoffs.coded.diagnostics import relative_suboptimality
from tradeoffs.coded.diagnostics import settling_index
from tradeoffs.coded.diagnostics import time_to_epsilon
from tradeoffs.coded.diagnostics import time_to_stay_below
from tradeoffs.coded.diagnostics import welch_bound
from tradeoffs.coded.encoding import ENCODINGS
from tradeoffs.coded.encoding import encode
from tradeoffs.coded.encoding import encoding_matrix
from tradeoffs.coded.encoding import fwht
from tradeoffs.coded.encoding import paley_sizes
from tradeoffs.coded.encoding import register_encoding
from tradeoffs.coded.gradient_coding import GRADIENT_CODES
from tradeoffs.coded.gradient_coding import NotDecodableError
from tradeoffs.coded.gradient_coding import gradient_code
from tradeoffs.coded.gradient_coding import register_gradient_code
from tradeoffs.coded.optimize import Trace
from tradeoffs.coded.optimize import WorkerData
from tradeoffs.coded.optimize import decode_weights
from tradeoffs.coded.optimize import encode_problem
from tradeoffs.coded.optimize import gradient_code_problem
from tradeoffs.coded.optimize import iteration_times
from tradeoffs.coded.optimize import make_mesh
from tradeoffs.coded.optimize import run
from tradeoffs.coded.optimize import simulate
from tradeoffs.coded.problems import Problem
from tradeoffs.coded.problems import make_problem
from tradeoffs.coded.problems import objective
from tradeoffs.coded.problems import optimum
from tradeoffs.coded.problems import synthetic_problem
from tradeoffs.coded.stragglers import STRAGGLER_MODELS
from tradeoffs.coded.stragglers import expected_kth_delay
from tradeoffs.coded.stragglers import fastest_k_mask
from tradeoffs.coded.stragglers import kth_delay
from tradeoffs.coded.stragglers import register_straggler_model
from tradeoffs.coded.stragglers import sample_delays
