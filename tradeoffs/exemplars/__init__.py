"""Compression-identified exemplars: population modal labels, PIE / CIE (modal and
taxicab), per-class Welch t-tests, the hidden costs of a compressed population
(`compression_costs`), Q-score and prediction depth, and audit outputs.

Pure functions of saved per-example predictions: population scores [members, examples,
classes] or predicted labels [members, examples], labels [examples].
"""

from tradeoffs.exemplars.audit import audit_figure
from tradeoffs.exemplars.audit import audit_sheet
from tradeoffs.exemplars.audit import write_audit
from tradeoffs.exemplars.audit import write_cie_list
from tradeoffs.exemplars.cie import TaxicabCIE
from tradeoffs.exemplars.compression import compression_costs
from tradeoffs.exemplars.cie import accuracy_split
from tradeoffs.exemplars.cie import cie
from tradeoffs.exemplars.cie import group_breakdown
from tradeoffs.exemplars.cie import pie
from tradeoffs.exemplars.cie import taxicab_cie
from tradeoffs.exemplars.cie import taxicab_scores
from tradeoffs.exemplars.population import label_counts
from tradeoffs.exemplars.population import label_distribution
from tradeoffs.exemplars.population import modal_labels
from tradeoffs.exemplars.population import predicted_labels
from tradeoffs.exemplars.representation import knn_predict
from tradeoffs.exemplars.representation import layer_knn_predictions
from tradeoffs.exemplars.representation import prediction_depth
from tradeoffs.exemplars.representation import q_score
from tradeoffs.exemplars.stats import PerClassTTest
from tradeoffs.exemplars.stats import TTest
from tradeoffs.exemplars.stats import per_class_ttest
from tradeoffs.exemplars.stats import student_t_two_sided_pvalue
from tradeoffs.exemplars.stats import welch_ttest
