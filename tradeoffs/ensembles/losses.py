"""Co-training losses over the members' logits, their weight schedule, multi-view keys.

All losses take logits of shape [S, B, C] (members, batch, classes) and return a scalar
averaged over the batch. They are pure and jit/vmap/grad-able.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from tradeoffs.ensembles.combine import check_logits as _check_logits
from tradeoffs.ensembles.combine import mean_probs
from tradeoffs.ensembles.divide import check_num_members


def _entropy(log_probs: jax.Array) -> jax.Array:
  return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def js_divergence(logits: jax.Array) -> jax.Array:
  """Generalized Jensen-Shannon divergence H(mean_i p_i) - mean_i H(p_i).

  p_i = softmax(logits_i); entropies in nats, averaged over the batch. It is zero when
  all members agree and never negative (entropy is concave). Gradients flow to every
  member, as in the reference code's `js_divergence`.

  >>> import numpy as np
  >>> float(js_divergence(np.zeros((3, 2, 4))))                          # members agree
  0.0
  >>> round(float(js_divergence(np.array([[[50.0, 0.0]], [[0.0, 50.0]]]))), 4)   # ln 2
  0.6931
  """
  _check_logits(logits)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  mixture_entropy = _entropy(mean_probs(logits))                # [B]
  member_entropy = jnp.mean(_entropy(log_probs), axis=0)        # [B]
  return jnp.mean(mixture_entropy - member_entropy)


def pairwise_kl(logits: jax.Array) -> jax.Array:
  """sum_{i != j} KL(stopgrad(p_j) || p_i) / (S - 1), averaged over the batch.

  Each member i is pulled towards every other member's (fixed) prediction, as in the
  reference code's `kl_seperate`. Zero for S = 1.

  >>> import numpy as np
  >>> members = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])   # p = (.5, .5), q = (.75, .25)
  >>> round(float(pairwise_kl(members)), 4)                      # KL(p||q) + KL(q||p)
  0.2747
  """
  _check_logits(logits)
  num_members = logits.shape[0]
  if num_members == 1:
    return jnp.zeros((), logits.dtype)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  targets = jax.lax.stop_gradient(log_probs)
  # kl[j, i, b] = KL(p_j || p_i); the diagonal is exactly zero.
  kl = jnp.sum(jnp.exp(targets)[:, None] * (targets[:, None] - log_probs[None, :]), axis=-1)
  return jnp.sum(jnp.mean(kl, axis=-1)) / (num_members - 1)


# Name -> fn(logits [S, B, C]) -> scalar.
COTRAINING_LOSSES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "js_divergence": js_divergence,
    "pairwise_kl": pairwise_kl,
}


def get_cotraining_loss(name: str) -> Callable[[jax.Array], jax.Array]:
  """The co-training loss registered as `name`.

  >>> get_cotraining_loss("pairwise_kl") is pairwise_kl
  True
  """
  if name not in COTRAINING_LOSSES:
    raise ValueError(f"cotraining loss {name!r} is unknown; valid: {sorted(COTRAINING_LOSSES)}")
  return COTRAINING_LOSSES[name]


def register_cotraining_loss(name: str, fn: Callable[[jax.Array], jax.Array]) -> None:
  """Adds `fn(logits [S, B, C]) -> scalar` as `name`; ValueError if the name is taken.

  >>> import jax.numpy as jnp
  >>> register_cotraining_loss("zero", lambda logits: jnp.zeros(()))
  >>> float(get_cotraining_loss("zero")(jnp.ones((2, 1, 3))))
  0.0
  >>> del COTRAINING_LOSSES["zero"]
  """
  if name in COTRAINING_LOSSES:
    raise ValueError(f"cotraining loss {name!r} is already registered")
  COTRAINING_LOSSES[name] = fn


def cotraining_weight(epoch: Any, *, weight: float = 0.5, warmup_epochs: float = 40,
                      floor: float = 0.005) -> jax.Array:
  """lambda_t = max(weight * epoch / warmup_epochs, floor) while epoch < warmup_epochs,
  then `weight` (the paper: weight 0.5, E_w 40 on CIFAR, 60 on ImageNet).

  `epoch` may be a traced scalar; pass an integer epoch for the reference code's
  per-epoch steps or a fractional one (step / steps_per_epoch) for a smooth ramp.

  >>> [round(float(cotraining_weight(e)), 4) for e in (0, 20, 40, 100)]   # 0.5 * e / 40, floor
  [0.005, 0.25, 0.5, 0.5]
  """
  if warmup_epochs < 0:
    raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
  epoch = jnp.asarray(epoch, jnp.float32)
  if warmup_epochs == 0:
    return jnp.full_like(epoch, weight)
  ramp = jnp.maximum(weight * epoch / warmup_epochs, floor)
  return jnp.where(epoch < warmup_epochs, ramp, weight)


def cotraining_schedule(steps_per_epoch: int, *, weight: float = 0.5,
                        warmup_epochs: float = 40, floor: float = 0.005,
                        per_epoch: bool = True) -> Callable[[Any], jax.Array]:
  """step -> lambda_t, like an optax schedule. `per_epoch` holds the weight constant
  within an epoch (the reference code); otherwise it ramps every step.

  >>> per_epoch = cotraining_schedule(100, warmup_epochs=4)
  >>> smooth = cotraining_schedule(100, warmup_epochs=4, per_epoch=False)
  >>> float(per_epoch(250)), float(smooth(250))   # epoch 2 (floored) vs 2.5
  (0.25, 0.3125)
  """
  if steps_per_epoch < 1:
    raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    epoch = jnp.floor(step / steps_per_epoch) if per_epoch else step / steps_per_epoch
    return cotraining_weight(epoch, weight=weight, warmup_epochs=warmup_epochs, floor=floor)

  return schedule


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-member mean cross-entropy, shape [S], for logits [S, B, C] and labels [B] or [S, B].

  >>> import numpy as np
  >>> logits = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])    # S=2, B=1
  >>> np.asarray(cross_entropy(logits, np.array([0])), np.float64).round(4).tolist()   # ln 2, -ln .75
  [0.6931, 0.2877]
  """
  _check_logits(logits)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  labels = jnp.broadcast_to(labels, logits.shape[:2])
  nll = -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
  return jnp.mean(nll, axis=-1)


def cotraining_objective(logits: jax.Array, labels: jax.Array, cot_weight: Any, *,
                         loss: str = "js_divergence") -> tuple[jax.Array, dict[str, jax.Array]]:
  """Total loss sum_i CE(f_i(x_i), y) + cot_weight * cotraining loss, and its parts.

  >>> import numpy as np
  >>> total, parts = cotraining_objective(np.zeros((2, 1, 2)), np.array([1]), 0.5)
  >>> round(float(total), 4), float(parts["cotraining"])         # 2 ln 2 + 0.5 * 0
  (1.3863, 0.0)
  """
  cot_fn = get_cotraining_loss(loss)
  ce = cross_entropy(logits, labels)
  cot = cot_fn(logits)
  total = jnp.sum(ce) + cot_weight * cot
  return total, {"cross_entropy": ce, "cotraining": cot}


def member_keys(key: jax.Array, num_members: int, *, shared_view: bool = False) -> jax.Array:
  """S augmentation keys: independent views per member, or one view shared by all.

  >>> import jax
  >>> import numpy as np
  >>> keys = member_keys(jax.random.key(0), 3)
  >>> keys.shape, len({int(jax.random.randint(k, (), 0, 2**30)) for k in keys})   # distinct
  ((3,), 3)
  >>> same = member_keys(jax.random.key(0), 3, shared_view=True)
  >>> len({int(jax.random.randint(k, (), 0, 2**30)) for k in same})
  1
  """
  num_members = check_num_members(num_members)
  if shared_view:
    return jnp.broadcast_to(key, (num_members, *jnp.shape(key)))
  return jax.random.split(key, num_members)


def multi_view(augment: Callable[[jax.Array, Any], Any], key: jax.Array, batch: Any,
               num_members: int, *, shared_view: bool = False) -> Any:
  """Stacks S augmented views [S, ...] of one batch: `augment(key, batch)` per member.

  Things drawn once for the whole batch before the split (mixup's lambda, as in the
  paper) belong outside `augment`.

  >>> import jax
  >>> import numpy as np
  >>> noisy = lambda key, batch: batch + jax.random.normal(key, batch.shape)
  >>> views = multi_view(noisy, jax.random.key(0), np.zeros((4, 2)), 3)   # [S, B, ...]
  >>> views.shape, bool(np.any(views[0] != views[1]))
  ((3, 4, 2), True)
  >>> shared = multi_view(noisy, jax.random.key(0), np.zeros((4, 2)), 3, shared_view=True)
  >>> bool(np.all(shared[0] == shared[2]))
  True
  """
  keys = member_keys(key, num_members, shared_view=shared_view)
  return jax.vmap(augment, in_axes=(0, None))(keys, batch)
