"""Per-example training dynamics: what each example's loss, true-class probability and
correctness do over the epochs, and the learning-speed summaries built on them.

    state, dyn, _ = train.dynamics.train(state, split, step_config, mesh, epochs=30)
    dyn.p_true                               # float16 [members, epochs, examples]
    dynamics.area_under_margin(dyn.margin[0]), dynamics.forgetting_events(dyn.correct[0])

`tradeoffs.train.dynamics` measures them inside the compiled training (a pass over the
training set at every epoch boundary) and selects examples to augment from them (targeted
augmentation); this package stays free of the trainer: `summaries` holds the pure numpy summaries (AUM, first epoch learned, forgetting events)
and the average precision used to score how well a summary retrieves noisy or atypical
examples; `measures` the per-example quantities of a batch of logits.
"""

from tradeoffs.dynamics.measures import MEASURES
from tradeoffs.dynamics.measures import example_measures
from tradeoffs.dynamics.summaries import area_under_margin
from tradeoffs.dynamics.summaries import average_precision
from tradeoffs.dynamics.summaries import first_learned
from tradeoffs.dynamics.summaries import forgetting_events
from tradeoffs.dynamics.summaries import forgetting_score
from tradeoffs.dynamics.summaries import never_learned
