"""DP-SGD as an optax transformation: per-example clipping against a numpy loop over
examples, the noise std σ·C/B over many draws, noise a pure function of (seed, step), and
the trainer handing it per-example gradients."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import privacy


def _grads(batch=6, seed=0, scale=3.0):
  rng = np.random.default_rng(seed)
  return {"w": jnp.asarray(scale * rng.normal(size=(batch, 4, 3)), jnp.float32),
          "b": jnp.asarray(scale * rng.normal(size=(batch, 3)), jnp.float32)}


def _numpy_clip(grads, clip):
  """Reference: one example at a time."""
  out = {k: np.zeros_like(np.asarray(v)) for k, v in grads.items()}
  norms = []
  for i in range(np.asarray(grads["w"]).shape[0]):
    flat = np.concatenate([np.asarray(v[i]).ravel() for v in grads.values()])
    norm = float(np.sqrt(np.sum(flat.astype(np.float64) ** 2)))
    norms.append(norm)
    factor = min(1.0, clip / norm) if norm > 0 else 1.0
    for k, v in grads.items():
      out[k][i] = np.asarray(v[i]) * factor
  return out, np.asarray(norms)


def test_clipping_bounds_every_example_and_matches_a_loop():
  grads = _grads()
  grads["w"] = grads["w"].at[2].set(0.0)
  grads["b"] = grads["b"].at[2].set(0.0)  # A zero gradient stays zero (no 0/0).
  grads["w"] = grads["w"].at[3].multiply(1e-3)  # One below the clip norm: untouched.
  grads["b"] = grads["b"].at[3].multiply(1e-3)
  clip = 1.5
  clipped, norms = privacy.clip_per_example(grads, clip)
  reference, ref_norms = _numpy_clip(grads, clip)
  np.testing.assert_allclose(np.asarray(norms), ref_norms, rtol=1e-5)
  for k in grads:
    np.testing.assert_allclose(np.asarray(clipped[k]), reference[k], rtol=1e-5, atol=1e-7)
  after = np.asarray(privacy.per_example_norms(clipped))
  assert np.all(after <= clip * (1 + 1e-5))
  np.testing.assert_allclose(after[[0, 1, 4, 5]], clip, rtol=1e-5)  # These were above C.
  assert after[2] == 0 and after[3] == pytest.approx(ref_norms[3], rel=1e-5)


def test_noise_free_update_is_the_mean_of_clipped_gradients_through_the_inner_optimizer():
  grads = _grads()
  params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros((3,))}
  tx = privacy.dp_sgd(1.0, 0.0, seed=0, inner=optax.sgd(0.5))
  updates, state = tx.update(grads, tx.init(params), params)
  reference, _ = _numpy_clip(grads, 1.0)
  for k in grads:
    np.testing.assert_allclose(np.asarray(updates[k]), -0.5 * reference[k].mean(0),
                               rtol=1e-5, atol=1e-7)
  assert int(state[0].count) == 1


def test_noise_std_is_sigma_clip_over_batch_over_many_draws():
  batch, clip, sigma = 8, 2.0, 1.3
  zero = {"w": jnp.zeros((batch, 50, 40))}
  tx = privacy.dp_aggregate(clip, sigma, seed=3)
  state = tx.init({"w": jnp.zeros((50, 40))})
  draws = []
  for _ in range(25):  # 25 steps x 2,000 coordinates = 50,000 draws.
    out, state = tx.update(zero, state)
    draws.append(np.asarray(out["w"]).ravel())
  draws = np.concatenate(draws)
  expected = sigma * clip / batch
  # The sample std of 50,000 normals is within 2% of the truth with overwhelming odds
  # (its relative standard error is 1/sqrt(2n) = 0.3%).
  assert draws.std() == pytest.approx(expected, rel=0.02)
  assert abs(draws.mean()) < 4 * expected / np.sqrt(draws.size)


def test_noise_is_a_pure_function_of_seed_and_step():
  grads = _grads()
  params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros((3,))}
  tx = privacy.dp_aggregate(1.0, 1.0, seed=7)
  s0 = tx.init(params)
  a1, s1 = tx.update(grads, s0)
  b1, _ = tx.update(grads, s0)  # Same (seed, step): bitwise the same noise.
  j1, _ = jax.jit(tx.update)(grads, s0)  # Compiled: the same up to XLA's float fusion.
  for k in grads:
    np.testing.assert_array_equal(np.asarray(a1[k]), np.asarray(b1[k]))
    np.testing.assert_allclose(np.asarray(a1[k]), np.asarray(j1[k]), rtol=1e-5, atol=1e-6)
  a2, _ = tx.update(grads, s1)  # Next step: other noise.
  assert not np.allclose(np.asarray(a1["w"]), np.asarray(a2["w"]))
  # A state rebuilt from its (count, seed) — as a checkpoint restores it — draws the same.
  rebuilt = privacy.DpSgdState(count=jnp.asarray(1, jnp.int32), seed=jnp.asarray(7, jnp.int32))
  c2, _ = tx.update(grads, rebuilt)
  np.testing.assert_array_equal(np.asarray(a2["w"]), np.asarray(c2["w"]))
  other = privacy.dp_aggregate(1.0, 1.0, seed=8)
  d1, _ = other.update(grads, other.init(params))
  assert not np.allclose(np.asarray(a1["w"]), np.asarray(d1["w"]))
  key = privacy.noise_key(7, 1)
  np.testing.assert_array_equal(np.asarray(key),
                                np.asarray(jax.random.fold_in(jax.random.PRNGKey(7), 1)))


def test_member_seeds_replace_the_vmapped_seed():
  params = {"w": jnp.zeros((3, 4, 3))}
  tx = privacy.dp_sgd(1.0, 1.0, seed=0, inner=optax.adam(1e-3))
  state = jax.vmap(tx.init)(params)
  assert np.asarray(privacy.noise_seeds(state)[0]).tolist() == [0, 0, 0]
  state = privacy.with_noise_seeds(state, np.array([5, 6, 7]))
  assert np.asarray(privacy.noise_seeds(state)[0]).tolist() == [5, 6, 7]
  grads = {"w": jnp.ones((3, 2, 4, 3))}
  out, _ = jax.vmap(tx.update)(grads, state, params)
  assert not np.allclose(np.asarray(out["w"][0]), np.asarray(out["w"][1]))
  with pytest.raises(ValueError, match="no dp_sgd state"):
    privacy.with_noise_seeds(optax.sgd(1.0).init(params), [1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(clip_norm=0.0, noise_multiplier=1.0), r"clip_norm=0.0 must be a finite number > 0"),
    (dict(clip_norm=-1.0, noise_multiplier=1.0), r"clip_norm=-1.0 must be"),
    (dict(clip_norm=1.0, noise_multiplier=-0.1), r"noise_multiplier=-0.1 must be a finite "
                                                 r"number >= 0"),
    (dict(clip_norm=1.0, noise_multiplier=float("nan")), r"noise_multiplier=nan"),
])
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    privacy.dp_sgd(**kwargs)


def test_gradients_without_a_batch_axis_are_refused():
  tx = privacy.dp_aggregate(1.0, 0.0)
  grads = {"w": jnp.ones((4, 3)), "b": jnp.ones((5,))}
  with pytest.raises(ValueError, match="per-example gradients"):
    tx.update(grads, tx.init(grads))


def test_trainer_hands_per_example_gradients_to_dp_sgd():
  """Through the real step: clipping at a huge norm without noise is plain SGD; with
  noise, two members with their own seeds move differently."""
  from tradeoffs import models, train
  from tradeoffs.train import extensions
  from tradeoffs.train import mesh as mesh_lib
  from tradeoffs.train import population as pop_lib

  rng = np.random.default_rng(0)

  class Split:
    images = rng.normal(size=(64, 4, 4, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 64).astype(np.int32)
    groups = np.zeros((64, 0), np.int32)

  mesh = mesh_lib.make_mesh(2, 1, devices=jax.devices()[:1])
  net = models.get("mlp", num_classes=3, hidden=(5,))
  ext = extensions.StepExtension(name="dp_sgd", per_example_grads=True)

  def step(tx, seeds=None):
    state = train.create_population(net, tx, (4, 4, 1), 2, train.Seeds(), mesh)
    if seeds is not None:
      state = state.replace(opt_state=privacy.with_noise_seeds(state.opt_state, seeds))
    new, _ = pop_lib.train_step(state, pop_lib.to_device(Split, mesh),
                                pop_lib.StepConfig(batch_size=16, extensions=(ext,)), mesh)
    plain, _ = pop_lib.train_step(
        train.create_population(net, optax.sgd(0.1), (4, 4, 1), 2, train.Seeds(), mesh),
        pop_lib.to_device(Split, mesh), pop_lib.StepConfig(batch_size=16), mesh)
    return new, plain

  new, plain = step(privacy.dp_sgd(1e6, 0.0, inner=optax.sgd(0.1)))
  for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(plain.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  noisy, plain = step(privacy.dp_sgd(1.0, 1.0, inner=optax.sgd(0.1)), seeds=[0, 1])
  delta = [np.asarray(a) - np.asarray(b) for a, b in
           zip(jax.tree.leaves(noisy.params), jax.tree.leaves(plain.params))]
  assert all(np.abs(d).max() > 0 for d in delta)


def test_gaussian_noise_is_one_draw_cut_into_the_leaves():
  dp = importlib.import_module("tradeoffs.privacy.dp_sgd")
  like = {"a": jnp.zeros((100, 50)), "b": jnp.zeros((100, 50)), "c": jnp.zeros(7)}
  noise = dp.gaussian_noise(jax.random.PRNGKey(3), like, 2.0)
  assert jax.tree.map(jnp.shape, noise) == jax.tree.map(jnp.shape, like)
  flat = np.concatenate([np.asarray(noise[k]).ravel() for k in ("a", "b", "c")])
  # 10,007 N(0, 4) draws: the sample std is within 5 standard errors of 2.
  assert abs(flat.std() - 2.0) < 5 * 2.0 / np.sqrt(2 * flat.size)
  assert abs(flat.mean()) < 5 * 2.0 / np.sqrt(flat.size)
  # Leaves of one shape are different draws, not one draw repeated.
  assert abs(np.corrcoef(np.asarray(noise["a"]).ravel(), np.asarray(noise["b"]).ravel())[0, 1]) < 0.05
  np.testing.assert_array_equal(flat, 2.0 * np.asarray(
      jax.random.normal(jax.random.PRNGKey(3), (flat.size,))))
