import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import train


def test_cosine_and_warmup_schedules_closed_form():
  cos = train.make_schedule({"schedule": "cosine", "learning_rate": 0.1}, 100)
  np.testing.assert_allclose(cos(0), 0.1)
  np.testing.assert_allclose(cos(50), 0.05, rtol=1e-6)
  np.testing.assert_allclose(cos(100), 0.0, atol=1e-9)
  warm = train.make_schedule({"schedule": "warmup_cosine", "learning_rate": 0.2,
                              "warmup_steps": 10}, 110)
  np.testing.assert_allclose(warm(5), 0.1, rtol=1e-6)
  np.testing.assert_allclose(warm(60), 0.1, rtol=1e-6)  # halfway through the cosine part


def test_piecewise_fractions():
  sched = train.make_schedule({"schedule": "piecewise", "learning_rate": 1.0,
                               "boundaries": (0.5, 0.75), "decay_factor": 0.1}, 100)
  np.testing.assert_allclose([sched(49), sched(51), sched(80)], [1.0, 0.1, 0.01], rtol=1e-6)


def test_weight_decay_skips_biases_by_default():
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
  zero_grads = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros((2,))}
  tx = train.make_optimizer({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                             "weight_decay": 0.5}, 10)
  updates, _ = tx.update(zero_grads, tx.init(params), params)
  np.testing.assert_allclose(updates["kernel"], -0.5 * np.ones((2, 2)))
  np.testing.assert_allclose(updates["bias"], np.zeros(2))
  tx_all = train.make_optimizer({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                                 "weight_decay": 0.5, "decay_norms_and_biases": True}, 10)
  updates, _ = tx_all.update(zero_grads, tx_all.init(params), params)
  np.testing.assert_allclose(updates["bias"], -0.5 * np.ones(2))


def test_nesterov_matches_optax():
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([0.5, 0.25])}
  ours = train.make_optimizer({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                               "nesterov": True}, 10)
  ref = optax.sgd(0.1, momentum=0.9, nesterov=True)
  a, _ = ours.update(grads, ours.init(params), params)
  b, _ = ref.update(grads, ref.init(params), params)
  np.testing.assert_allclose(a["w"], b["w"])


@pytest.mark.parametrize("config,match", [
    ({"name": "lion"}, "optimizer.name='lion' is unknown"),
    ({"name": "adam", "schedule": "triangle"}, "optimizer.schedule='triangle'"),
    ({"name": "adam", "learning_rate": -1.0}, "learning_rate"),
])
def test_bad_optimizer_configs(config, match):
  with pytest.raises(ValueError, match=match):
    train.make_optimizer(config, 10)


# One-step and two-step values against the update rules written out in numpy (no optax).
P0 = {"w": np.array([[1.0, -2.0], [0.5, 4.0]]), "b": np.array([0.3, -0.6])}
G0 = {"w": np.array([[0.5, 0.25], [-1.0, 0.0]]), "b": np.array([0.1, -0.2])}
G1 = {"w": np.array([[-0.5, 1.0], [2.0, 0.5]]), "b": np.array([0.4, 0.0])}


def _run(config, grads_seq, params=P0):
  """Applies make_optimizer's updates for each gradient in turn; returns each update."""
  tx = train.make_optimizer(config, 100)
  params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
  state = tx.init(params)
  out = []
  for grads in grads_seq:
    grads = {k: jnp.asarray(v, jnp.float32) for k, v in grads.items()}
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    out.append({k: np.asarray(v) for k, v in updates.items()})
  return out


def test_adamw_two_steps_hand_computed_decoupled_decay():
  lr, b1, b2, eps, wd = 0.1, 0.9, 0.99, 1e-3, 0.5
  config = {"name": "adamw", "learning_rate": lr, "b1": b1, "b2": b2, "eps": eps,
            "weight_decay": wd}
  got = _run(config, [G0, G1])
  for name in ("w", "b"):
    decay = wd if name == "w" else 0.0  # Biases (ndim 1) are not decayed by default.
    p, m, v = P0[name], 0.0, 0.0
    for t, g in enumerate((G0[name], G1[name]), start=1):
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * g ** 2
      m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
      # Decoupled: lr * wd * p is added outside the adaptive normalization.
      update = -lr * (m_hat / (np.sqrt(v_hat) + eps) + decay * p)
      np.testing.assert_allclose(got[t - 1][name], update, rtol=1e-5, atol=1e-7,
                                 err_msg=f"{name} step {t}")
      p = p + update


def test_adamw_decay_is_not_normalized_but_adam_l2_is():
  zero = {k: np.zeros_like(v) for k, v in P0.items()}
  base = {"learning_rate": 0.1, "eps": 1e-8, "weight_decay": 0.01,
          "decay_norms_and_biases": True}
  # AdamW with zero gradient: exactly -lr * wd * p.
  (adamw,) = _run({"name": "adamw", **base}, [zero])
  np.testing.assert_allclose(adamw["w"], -0.1 * 0.01 * P0["w"], rtol=1e-5)
  np.testing.assert_allclose(adamw["b"], -0.1 * 0.01 * P0["b"], rtol=1e-5)
  # Adam's coupled L2: g = wd * p goes through m / sqrt(v): -lr * sign(p) on step one.
  (adam,) = _run({"name": "adam", **base}, [zero])
  g = 0.01 * P0["w"]
  np.testing.assert_allclose(adam["w"], -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-5)


def _flax_like_params():
  return {"Conv_0": {"kernel": np.ones((3, 3, 1, 2)), "bias": np.ones(2)},
          "BatchNorm_0": {"scale": np.ones(2), "bias": np.ones(2)},
          "Dense_0": {"kernel": np.ones((2, 3)), "bias": np.ones(3)},
          "temperature": np.array(1.0)}


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("decay_norms_and_biases", [False, True])
def test_norms_biases_and_scalars_undecayed_unless_asked(name, decay_norms_and_biases):
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), _flax_like_params())
  zero = jax.tree.map(jnp.zeros_like, params)
  tx = train.make_optimizer({"name": name, "learning_rate": 0.1, "momentum": 0.0,
                             "weight_decay": 0.5,
                             "decay_norms_and_biases": decay_norms_and_biases}, 10)
  updates, _ = tx.update(zero, tx.init(params), params)
  flat = {jax.tree_util.keystr(path): np.asarray(u)
          for path, u in jax.tree_util.tree_leaves_with_path(updates)}
  assert len(flat) == 7
  for path, update in flat.items():
    decayed = decay_norms_and_biases or "kernel" in path
    if not decayed:
      np.testing.assert_array_equal(update, 0.0, err_msg=path)
    elif name == "adam":  # Coupled L2 through Adam: -lr * sign(p) on step one.
      np.testing.assert_allclose(update, -0.1, rtol=1e-5, err_msg=path)
    else:  # SGD: -lr * wd * p; AdamW: the same, decoupled.
      np.testing.assert_allclose(update, -0.1 * 0.5, rtol=1e-5, err_msg=path)


def test_sgd_momentum_and_nesterov_two_steps_hand_computed():
  lr, mu = 0.1, 0.9
  g0, g1 = G0["w"], G1["w"]
  # Heavy ball (PyTorch, dampening 0): t = g + mu * t_prev, update = -lr * t.
  momentum = _run({"name": "sgd", "learning_rate": lr, "momentum": mu}, [G0, G1])
  np.testing.assert_allclose(momentum[0]["w"], -lr * g0, rtol=1e-6)
  np.testing.assert_allclose(momentum[1]["w"], -lr * (g1 + mu * g0), rtol=1e-6)
  # Nesterov: update = -lr * (g + mu * t).
  nesterov = _run({"name": "sgd", "learning_rate": lr, "momentum": mu, "nesterov": True},
                  [G0, G1])
  np.testing.assert_allclose(nesterov[0]["w"], -lr * (g0 + mu * g0), rtol=1e-6)
  t1 = g1 + mu * g0
  np.testing.assert_allclose(nesterov[1]["w"], -lr * (g1 + mu * t1), rtol=1e-6)
  # momentum=0 is plain SGD: no memory of g0.
  plain = _run({"name": "sgd", "learning_rate": lr, "momentum": 0.0}, [G0, G1])
  np.testing.assert_allclose(plain[1]["w"], -lr * g1, rtol=1e-6)


def test_sgd_coupled_decay_enters_the_momentum_and_clip_scales_gradients():
  lr, mu, wd = 0.1, 0.9, 0.5
  got = _run({"name": "sgd", "learning_rate": lr, "momentum": mu, "weight_decay": wd},
             [G0, G1])
  p0 = P0["w"]
  t0 = G0["w"] + wd * p0
  p1 = p0 - lr * t0
  t1 = (G1["w"] + wd * p1) + mu * t0
  np.testing.assert_allclose(got[0]["w"], -lr * t0, rtol=1e-6)
  np.testing.assert_allclose(got[1]["w"], -lr * t1, rtol=1e-6)
  # Global-norm clip of (3, 4) to 1 before the step.
  (clipped,) = _run({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                     "grad_clip_norm": 1.0}, [{"w": np.array([3.0, 4.0])}],
                    params={"w": np.zeros(2)})
  np.testing.assert_allclose(clipped["w"], [-0.6, -0.8], rtol=1e-6)
