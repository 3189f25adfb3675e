"""Training: train state, pure steps, optimizers, mesh, populations, checkpoints.

    mesh = train.make_mesh(members=8)
    tx = train.make_optimizer({"name": "adam", "learning_rate": 1e-3}, total_steps=500)
    pop = train.create_population(net, tx, ds.input_shape, 8, train.Seeds(vary=("init",)), mesh)
    pop, _ = train.fit(pop, ds.train, steps=500, batch_size=128, mesh=mesh)  # plan='auto'
    logits = train.predict(pop, ds.test.images, mesh=mesh)     # [members, examples, classes]
"""

from tradeoffs.train.checkpoint import Checkpointer
from tradeoffs.train.checkpoint import PreemptionGuard
from tradeoffs.train.extensions import Batch
from tradeoffs.train.extensions import StepExtension
from tradeoffs.train.mesh import make_mesh
from tradeoffs.train.optimizers import make_optimizer
from tradeoffs.train.optimizers import make_schedule
from tradeoffs.train.plan import PLANS
from tradeoffs.train.plan import Plan
from tradeoffs.train.population import DeviceData
from tradeoffs.train.population import StepConfig
from tradeoffs.train.population import TrainState
from tradeoffs.train.population import create_population
from tradeoffs.train.population import eval_step
from tradeoffs.train.population import fit
from tradeoffs.train.population import make_runner
from tradeoffs.train.population import predict
from tradeoffs.train.population import softmax_cross_entropy
from tradeoffs.train.population import to_device
from tradeoffs.train.population import train_step
from tradeoffs.train.predictions import Predictions
from tradeoffs.train.seeds import SOURCES
from tradeoffs.train.seeds import Seeds
