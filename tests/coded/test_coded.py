"""Tests for tradeoffs.coded: encodings, stragglers, optimizers, gradient codes."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.special
from hypothesis import given, settings, strategies as st

from tradeoffs import coded
from tradeoffs.coded import diagnostics, encoding, optimize, stragglers
from tradeoffs.coded import gradient_coding as gc_lib


def _problem(n=64, d=6, loss="least_squares", l2=1e-2, l1=0.0, seed=0):
  kx, kw, ke = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(kx, (n, d))
  w = jax.random.normal(kw, (d,))
  if loss == "least_squares":
    y = x @ w + 0.3 * jax.random.normal(ke, (n,))
  else:
    y = (jax.random.uniform(ke, (n,)) < jax.nn.sigmoid(x @ w)).astype(jnp.float32)
  return coded.make_problem(x, y, loss=loss, l2=l2, l1=l1)


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_fwht_matches_scipy_hadamard(n):
  x = np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32)
  np.testing.assert_allclose(coded.fwht(jnp.asarray(x)), scipy.linalg.hadamard(n) @ x,
                             rtol=1e-5, atol=1e-4)


def test_fwht_rejects_non_power_of_two():
  with pytest.raises(ValueError, match="power-of-two"):
    coded.fwht(jnp.ones((6,)))


def test_hadamard_encoding_with_all_rows_is_a_tight_frame():
  # n = 8, beta = 2 -> rows = 16 = N: every row kept, so S^T S = beta I exactly.
  s = coded.encoding_matrix("hadamard", 8, 2.0, jax.random.key(1))
  assert s.shape == (16, 8)
  np.testing.assert_allclose(s.T @ s, 2.0 * np.eye(8), atol=1e-5)
  # Applying with the fast transform equals multiplying by the dense matrix.
  x = jax.random.normal(jax.random.key(2), (8, 3))
  np.testing.assert_allclose(coded.encode("hadamard", x, 2.0, jax.random.key(1)), s @ x,
                             atol=1e-5)


def test_hadamard_encoding_matches_explicit_numpy_construction():
  # n = 5, beta = 2.5: rows = 13 of N = 16, so rows, columns and signs are all subsampled.
  n, beta, key = 5, 2.5, jax.random.key(7)
  big_n, cols, signs, picked = (np.asarray(v) for v in encoding.hadamard_layout(n, 13, key))
  assert big_n == 16 and len(set(cols.tolist())) == n and len(set(picked.tolist())) == 13
  assert set(np.unique(signs).tolist()) == {-1.0, 1.0}
  h = scipy.linalg.hadamard(16).astype(np.float64)
  reference = np.sqrt(16 / n) * h[picked][:, cols] * signs[None, :] / np.sqrt(16)
  s = np.asarray(coded.encoding_matrix("hadamard", n, beta, key))
  np.testing.assert_allclose(s, reference, atol=1e-6)
  # The signs are applied: flipping them back (S diag(signs)) no longer matches.
  assert np.abs(s * signs[None, :] - reference).max() > 0.1


@pytest.mark.parametrize("n", [64, 100])
@pytest.mark.parametrize("seed", [0, 1])
def test_hadamard_encoding_has_no_duplicate_rows_and_survives_any_two_stragglers(n, seed):
  # Regression: the data used to sit in the first n of N slots, so rows i and i + N/2 of
  # S were equal up to sign and every 6 of 8 workers was rank-deficient (rank 98 at n=100).
  s = np.asarray(coded.encoding_matrix("hadamard", n, 2.0, jax.random.key(seed)), np.float64)
  unit = s / np.linalg.norm(s, axis=1, keepdims=True)
  cosines = np.abs(unit @ unit.T)[~np.eye(len(s), dtype=bool)]
  assert cosines.max() < 0.9
  assert np.linalg.matrix_rank(s) == n
  blocks = np.asarray(encoding.split_blocks(jnp.asarray(s), 8))
  for workers in itertools.combinations(range(8), 6):
    kept = blocks[list(workers)].reshape(-1, n)
    assert np.linalg.svd(kept, compute_uv=False)[-1] > 0.1, workers


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hadamard_signs_spread_a_constant_input(seed):
  # H's row 0 is all ones and n = 64, beta = 2 keeps every row: without the random signs
  # S @ 1 puts half its energy (64 of 128) in one entry; with them no entry is special.
  v = np.asarray(coded.encode("hadamard", jnp.ones((64,)), 2.0, jax.random.key(seed)))
  np.testing.assert_allclose(v @ v, 2.0 * 64, rtol=1e-5)  # S^T S = 2I exactly here.
  assert (v ** 2).max() / (v @ v) < 0.2


@pytest.mark.parametrize("n", [3, 7, 9, 15])
def test_paley_etf_is_tight_and_meets_welch_bound(n):
  s = np.asarray(coded.encoding_matrix("paley", n, 2.0, jax.random.key(0)))
  assert s.shape == (2 * n, n)
  np.testing.assert_allclose(s.T @ s, 2.0 * np.eye(n), atol=1e-4)
  norms = np.linalg.norm(s, axis=1)
  np.testing.assert_allclose(norms, norms[0], rtol=1e-4)  # Equal norm.
  unit = s / norms[:, None]
  off = np.abs(unit @ unit.T)[~np.eye(2 * n, dtype=bool)]
  np.testing.assert_allclose(off, off[0], rtol=1e-3)  # Equiangular.
  np.testing.assert_allclose(diagnostics.coherence(jnp.asarray(s)),
                             diagnostics.welch_bound(2 * n, n), rtol=1e-3)


def test_paley_frame_is_computed_once_per_size():
  encoding.paley_frame.cache_clear()
  first = encoding.paley_frame(9)
  np.testing.assert_allclose(np.asarray(coded.encoding_matrix("paley", 9, 2, jax.random.key(0))),
                             first)
  again = encoding.paley_frame(9)
  coded.encode("paley", jnp.ones((9, 2)), 2.0, jax.random.key(1))
  info = encoding.paley_frame.cache_info()
  assert again is first and (info.misses, info.hits) == (1, 3)
  assert not first.flags.writeable
  with pytest.raises(ValueError, match="read-only"):
    first[0, 0] = 1.0
  assert encoding.paley_frame(7) is not first and encoding.paley_frame.cache_info().misses == 2


def test_conference_matrix_squares_to_q():
  c = encoding.conference_matrix(13)
  np.testing.assert_allclose(c @ c, 13 * np.eye(14))
  np.testing.assert_allclose(c, c.T)


@pytest.mark.parametrize("kind,beta", [("uncoded", 1), ("replication", 3)])
def test_selecting_encodings_are_exact(kind, beta):
  s = np.asarray(coded.encoding_matrix(kind, 4, beta, jax.random.key(0)))
  np.testing.assert_allclose(s, np.concatenate([np.eye(4)] * beta))


def test_gaussian_encoding_is_beta_identity_in_expectation():
  grams = jax.vmap(lambda k: (lambda s: s.T @ s)(coded.encoding_matrix("gaussian", 4, 2, k)))(
      jax.random.split(jax.random.key(0), 400))
  np.testing.assert_allclose(grams.mean(0), 2 * np.eye(4), atol=0.1)


@pytest.mark.parametrize("kind,n,beta,match", [
    ("paley", 8, 2, r"n=8 .*\[3, 7, 9, 15"), ("paley", 7, 3, "beta=3"),
    ("uncoded", 4, 2, "uncoded means beta=1"), ("gaussian", 4, 0.5, "beta=0.5"),
    ("fourier", 4, 2, "valid: "), ("replication", 4, 1.5, "integer")])
def test_bad_encodings_raise(kind, n, beta, match):
  with pytest.raises(ValueError, match=match):
    coded.encoding_matrix(kind, n, beta, jax.random.key(0))


def test_block_rip_of_tight_frame_with_all_workers_is_exact():
  s = coded.encoding_matrix("paley", 7, 2, jax.random.key(0))
  spec = coded.block_rip_spectrum(s, num_workers=2, k=2, key=jax.random.key(0), num_sets=4)
  assert float(spec["epsilon"]) < 1e-4
  spec = coded.block_rip_spectrum(s, num_workers=7, k=4, key=jax.random.key(0), num_sets=8)
  assert 0.0 < float(spec["epsilon"]) < 1.0


# ---- stragglers ----

@pytest.mark.parametrize("model,params", [
    ("fixed_slow", dict(num_slow=2, base=1.0, slow_delay=5.0)),
    ("shifted_exponential", dict(shift=1.0, rate=2.0)),
    ("pareto", dict(scale=1.0, alpha=3.0)),
    ("bimodal", dict(p_slow=0.3))])
def test_straggler_models_are_seeded_and_shaped(model, params):
  a = coded.sample_delays(model, jax.random.key(3), 50, 6, **params)
  b = coded.sample_delays(model, jax.random.key(3), 50, 6, **params)
  assert a.shape == (50, 6)
  np.testing.assert_array_equal(a, b)
  assert float(a.min()) >= 0.0


def test_fixed_slow_has_exactly_num_slow_slow_workers():
  d = coded.sample_delays("fixed_slow", jax.random.key(0), 20, 8, num_slow=3, base=1.0,
                          slow_delay=4.0, persistent=True)
  np.testing.assert_array_equal((d > 1.5).sum(1), 3)
  np.testing.assert_array_equal(d[0], d[-1])


def test_shifted_exponential_mean():
  d = coded.sample_delays("shifted_exponential", jax.random.key(0), 4000, 8, shift=1.0, rate=2.0)
  assert abs(float(d.mean()) - 1.5) < 0.02


def test_trace_replay_and_shape_errors(tmp_path):
  trace = np.arange(12, dtype=np.float32).reshape(3, 4)
  np.save(tmp_path / "t.npy", trace)
  np.savetxt(tmp_path / "t.csv", trace, delimiter=",")
  for name in ("t.npy", "t.csv"):
    d = coded.sample_delays("trace", jax.random.key(0), 3, 4, path=str(tmp_path / name))
    np.testing.assert_array_equal(d, trace)
  with pytest.raises(ValueError, match=r"shape \(3, 4\).*num_workers=5"):
    coded.sample_delays("trace", jax.random.key(0), 3, 5, path=str(tmp_path / "t.npy"))
  with pytest.raises(ValueError, match="straggler.wrap=True"):
    coded.sample_delays("trace", jax.random.key(0), 5, 4, path=str(tmp_path / "t.npy"))
  wrapped = coded.sample_delays("trace", jax.random.key(0), 5, 4, path=str(tmp_path / "t.npy"),
                                wrap=True)
  np.testing.assert_array_equal(wrapped[3], trace[0])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0, 10, width=32), min_size=5, max_size=5), st.integers(1, 5))
def test_fastest_k_mask_and_kth_delay(delays, k):
  d = jnp.asarray(delays, jnp.float32)
  mask = np.asarray(coded.fastest_k_mask(d, k))
  assert mask.sum() == k
  kth = float(coded.kth_delay(d, k))
  assert kth == sorted(np.float32(delays))[k - 1]
  assert np.all(np.asarray(d)[mask] <= kth)


def test_bad_straggler_inputs_raise():
  with pytest.raises(ValueError, match="straggler.model='lognormal'.*valid"):
    coded.sample_delays("lognormal", jax.random.key(0), 2, 2)
  with pytest.raises(ValueError, match="k=5 .*num_workers=4"):
    stragglers.check_k(5, 4)


# ---- optimizers ----

def test_orthonormal_encoding_without_stragglers_is_plain_gd():
  problem = _problem(n=16, d=4)
  data = coded.encode_problem(problem, "hadamard", 2.0, 4, jax.random.key(0))  # S^T S = 2I.
  steps, alpha = 25, 0.3
  ws = coded.simulate(problem, data, jnp.ones((steps, 4), bool), step_size=alpha)
  w = np.zeros(4)
  x, y = np.asarray(problem.features, np.float64), np.asarray(problem.targets, np.float64)
  for t in range(steps):
    w = w - alpha * (x.T @ (x @ w - y) / 16 + problem.l2 * w)
    np.testing.assert_allclose(ws[t + 1], w, rtol=1e-4, atol=1e-5)


def test_uncoded_all_workers_converges_to_closed_form():
  problem = _problem()
  data = coded.encode_problem(problem, "uncoded", 1, 4, jax.random.key(0))
  delays = coded.sample_delays("shifted_exponential", jax.random.key(1), 120, 4)
  trace = coded.run(problem, data, delays, 4)
  w_star = np.linalg.solve(np.asarray(problem.features.T @ problem.features) / 64
                           + problem.l2 * np.eye(6),
                           np.asarray(problem.features.T @ problem.targets) / 64)
  np.testing.assert_allclose(trace.weights[-1], w_star, atol=1e-4)
  assert trace.suboptimality[-1] < 1e-6
  np.testing.assert_allclose(np.diff(trace.time), np.max(np.asarray(delays), axis=1), rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["gd", "lbfgs"])
def test_encoded_with_stragglers_reaches_a_small_floor(optimizer):
  problem = _problem(n=256, d=4)
  data = coded.encode_problem(problem, "hadamard", 2.0, 8, jax.random.key(0))
  delays = coded.sample_delays("shifted_exponential", jax.random.key(1), 80, 8)
  trace = coded.run(problem, data, delays, 4, optimizer=optimizer,
                    step_size=0.5 if optimizer == "lbfgs" else None)
  rel = coded.relative_suboptimality(trace.suboptimality, trace.optimum_value)
  assert rel[0] > 1.0 and coded.error_floor(rel) < 0.05


def test_lbfgs_without_stragglers_beats_gd_on_ill_conditioned_ridge():
  problem = _problem(n=64, d=6)
  x = problem.features * jnp.asarray([1, 1, 1, 1, 1, 10.0])
  problem = coded.make_problem(x, problem.targets, l2=1e-3)
  data = coded.encode_problem(problem, "uncoded", 1, 4, jax.random.key(0))
  delays = jnp.ones((40, 4))
  gd = coded.run(problem, data, delays, 4, optimizer="gd")
  lbfgs = coded.run(problem, data, delays, 4, optimizer="lbfgs", step_size=1.0)
  assert lbfgs.suboptimality[-1] < 1e-3 * gd.suboptimality[-1]


def test_prox_lasso_reaches_fista_optimum_and_is_sparse():
  problem = _problem(n=64, d=6, l2=0.0)
  problem = coded.make_problem(problem.features, problem.targets, l1=0.3)
  data = coded.encode_problem(problem, "uncoded", 1, 4, jax.random.key(0))
  trace = coded.run(problem, data, jnp.ones((400, 4)), 4, optimizer="prox")
  w_star = coded.optimum(problem)
  assert np.sum(np.abs(np.asarray(w_star)) < 1e-6) >= 1  # The l1 term zeroes something.
  np.testing.assert_allclose(trace.weights[-1], w_star, atol=1e-4)
  with pytest.raises(ValueError, match="optimizer='prox'"):
    coded.run(problem, data, jnp.ones((2, 4)), 4, optimizer="gd")


def test_logistic_uncoded_reaches_newton_optimum_and_mixing_is_refused():
  problem = _problem(loss="logistic", l2=1e-2)
  data = coded.encode_problem(problem, "replication", 2, 4, jax.random.key(0))
  trace = coded.run(problem, data, jnp.ones((400, 4)), 4, optimizer="gd")
  assert trace.suboptimality[-1] < 1e-5
  with pytest.raises(ValueError, match="encoding.kind='gaussian'.*allowed kinds"):
    coded.encode_problem(problem, "gaussian", 2, 4, jax.random.key(0))


@pytest.mark.parametrize("l1,l2", [(0.3, 0.0), (0.05, 0.0), (0.1, 0.2)])
def test_lasso_and_elastic_net_optimum_match_sklearn(l1, l2):
  sklearn_linear = pytest.importorskip("sklearn.linear_model")
  problem = _problem(n=64, d=6, l2=0.0)
  problem = coded.make_problem(problem.features, problem.targets, l1=l1, l2=l2)
  x, y = np.asarray(problem.features, np.float64), np.asarray(problem.targets, np.float64)
  # sklearn minimises 1/(2n) ||y - Xw||^2 + alpha r ||w||_1 + alpha (1 - r)/2 ||w||^2, the
  # same scaling as 0.5 * mean squared residual here: alpha = l1 + l2, r = l1 / alpha.
  alpha = l1 + l2
  kwargs = dict(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100000)
  if l2 == 0.0:
    reference = sklearn_linear.Lasso(**kwargs).fit(x, y).coef_
  else:
    reference = sklearn_linear.ElasticNet(l1_ratio=l1 / alpha, **kwargs).fit(x, y).coef_
  w_star = np.asarray(coded.optimum(problem))
  np.testing.assert_allclose(w_star, reference, atol=2e-5)
  np.testing.assert_array_equal(np.abs(w_star) < 1e-6, np.abs(reference) < 1e-9)


@pytest.mark.parametrize("l2", [1e-2, 1.0])
def test_logistic_optimum_matches_scipy_minimize(l2):
  problem = _problem(n=80, d=5, loss="logistic", l2=l2, seed=3)
  x, y = np.asarray(problem.features, np.float64), np.asarray(problem.targets, np.float64)

  def f(w):
    margins = x @ w
    return np.mean(np.logaddexp(0.0, margins) - y * margins) + 0.5 * l2 * w @ w

  def grad(w):
    return x.T @ (scipy.special.expit(x @ w) - y) / len(y) + l2 * w

  reference = scipy.optimize.minimize(f, np.zeros(5), jac=grad, method="BFGS",
                                      options=dict(gtol=1e-12)).x
  np.testing.assert_allclose(np.asarray(coded.optimum(problem)), reference, atol=1e-5)


# ---- simulated time ----

def test_simulated_time_is_the_kth_fastest_plus_compute():
  # Hand-computed k-th order statistics, with a tie in the second row.
  delays = np.array([[3.0, 1.0, 2.0, 5.0], [0.5, 4.0, 4.0, 1.0], [2.0, 2.0, 2.0, 0.0]])
  for k, expected in [(1, [1.0, 0.5, 0.0]), (2, [2.0, 1.0, 2.0]), (3, [3.0, 4.0, 2.0]),
                      (4, [5.0, 4.0, 2.0])]:
    np.testing.assert_allclose(coded.iteration_times(jnp.asarray(delays), k),
                               np.cumsum([0.0] + expected))
  np.testing.assert_allclose(coded.iteration_times(jnp.asarray(delays), 2, 0.25),
                             [0.0, 2.25, 3.5, 5.75])
  # Through run: 16 rows on 4 workers -> 4 rows each, compute 0.1 s per row.
  problem = _problem(n=16, d=3)
  data = coded.encode_problem(problem, "uncoded", 1, 4, jax.random.key(0))
  trace = coded.run(problem, data, jnp.asarray(delays), 2, compute_seconds_per_row=0.1)
  np.testing.assert_allclose(np.diff(trace.time), [2.4, 1.4, 2.4], rtol=1e-6)


@pytest.mark.parametrize("k,expected", [(1, 1.0), (6, 1.0), (7, 5.0), (8, 5.0)])
def test_fixed_slow_iteration_time_depends_only_on_k(k, expected):
  # Two of eight workers take base + slow_delay = 5 s every iteration: waiting for at
  # most six never waits for a straggler, seven or more always does.
  delays = coded.sample_delays("fixed_slow", jax.random.key(5), 30, 8, num_slow=2, base=1.0,
                               slow_delay=4.0)
  np.testing.assert_allclose(np.diff(coded.iteration_times(delays, k)), expected)


def test_bimodal_iteration_time_without_jitter():
  always = coded.sample_delays("bimodal", jax.random.key(0), 5, 4, base=1.0, slow_delay=4.0,
                               p_slow=1.0, jitter=0.0)
  never = coded.sample_delays("bimodal", jax.random.key(0), 5, 4, base=1.0, slow_delay=4.0,
                              p_slow=0.0, jitter=0.0)
  np.testing.assert_allclose(np.diff(coded.iteration_times(always, 1)), 5.0)
  np.testing.assert_allclose(np.diff(coded.iteration_times(never, 4)), 1.0)
  mixed = np.asarray(coded.sample_delays("bimodal", jax.random.key(1), 2000, 4, p_slow=0.2,
                                         jitter=0.0))
  # Waiting for all 4: slow unless none of the 4 straggles, P = 0.8^4.
  fast = np.mean(np.diff(coded.iteration_times(jnp.asarray(mixed), 4)) == 1.0)
  assert abs(fast - 0.8 ** 4) < 0.03


@pytest.mark.parametrize("k", [1, 4, 8])
def test_shifted_exponential_order_statistic_mean(k):
  # E[k-th smallest of m Exp(rate)] = (1/rate) sum_{j<k} 1/(m - j) (Renyi).
  m, shift, rate = 8, 1.0, 2.0
  delays = coded.sample_delays("shifted_exponential", jax.random.key(2), 20000, m, shift=shift,
                               rate=rate)
  expected = shift + sum(1.0 / (m - j) for j in range(k)) / rate
  mean = float(np.diff(coded.iteration_times(delays, k)).mean())
  assert abs(mean - expected) < 0.02 * expected, (mean, expected)


def test_pareto_fastest_worker_mean():
  # The minimum of m Pareto(alpha) with scale c is Pareto(m alpha): mean c m a / (m a - 1).
  delays = coded.sample_delays("pareto", jax.random.key(3), 20000, 8, scale=2.0, alpha=2.0)
  mean = float(np.diff(coded.iteration_times(delays, 1)).mean())
  assert abs(mean - 2.0 * 16 / 15) < 0.01


# ---- gradient coding ----

@pytest.mark.parametrize("code,m,s", [("fractional_repetition", 6, 1),
                                      ("fractional_repetition", 6, 2), ("cyclic", 5, 1),
                                      ("cyclic", 5, 2), ("cyclic", 6, 3)])
def test_gradient_code_recovers_exact_gradient_for_every_straggler_set(code, m, s):
  problem = _problem(n=60, d=3, loss="logistic")
  data = coded.gradient_code_problem(problem, code, m, s, jax.random.key(4))
  w = jnp.asarray([0.3, -0.2, 0.5])
  msgs = optimize.worker_messages(data, w)
  full = np.asarray(
      problem.features.T @ (jax.nn.sigmoid(problem.features @ w) - problem.targets)) / 60
  masks = []
  for size in range(0, s + 1):
    for stragglers_set in itertools.combinations(range(m), size):
      received = np.ones(m, bool)
      received[list(stragglers_set)] = False
      masks.append(received)
  masks = np.stack(masks)
  a = optimize.decode_all(data, masks)
  assert np.all(a[~masks] == 0)
  np.testing.assert_allclose(a @ np.asarray(msgs, np.float64),
                             np.broadcast_to(full, (len(masks), 3)), rtol=1e-4, atol=1e-6)


def _exactly_s_straggler_patterns(m, s):
  for stragglers_set in itertools.combinations(range(m), s):
    received = np.ones(m, bool)
    received[list(stragglers_set)] = False
    yield received


def test_every_straggler_pattern_decodes_or_waits_for_more_workers():
  # Every code with m <= 12, every s it allows, both codes, two keys, every set of exactly
  # s stragglers (supersets of responders only decode better). Messages in float32 as the
  # workers send them; the decoded sum must be the full gradient or the decoder must wait.
  # Regression: the float32 pinv decoder returned relative errors up to ~1 on 118 of these.
  rng = np.random.default_rng(0)
  fallbacks = patterns = 0
  for m in range(2, 13):
    for s in range(1, m):
      for code in ("fractional_repetition", "cyclic"):
        if code == "fractional_repetition" and m % (s + 1):
          continue
        for seed in (0, 1):
          b = np.asarray(coded.gradient_code(code, m, s, jax.random.key(seed)))
          g = rng.standard_normal((m, 4)).astype(np.float32)
          msgs = (b @ g).astype(np.float64)  # float32 worker arithmetic, as in optimize.
          total = g.astype(np.float64).sum(0)
          for received in _exactly_s_straggler_patterns(m, s):
            patterns += 1
            order = np.concatenate([np.flatnonzero(received),
                                    rng.permutation(np.flatnonzero(~received))])
            used = gc_lib.wait_until_decodable(b, order, m - s)
            assert np.all(used[received])
            if not np.array_equal(used, received):
              fallbacks += 1
              assert code == "cyclic"  # Fractional repetition is always exact.
              with pytest.raises(gc_lib.NotDecodableError, match="relative residual"):
                gc_lib.decode_weights(b, received)
            a = gc_lib.decode_weights(b, used)
            assert np.all(a[~used] == 0)
            err = np.linalg.norm(a @ msgs - total) / np.linalg.norm(total)
            assert err < 2e-4, (m, s, code, seed, np.flatnonzero(~received), err)
  expected = sum(2 * math.comb(m, s) * (1 + (m % (s + 1) == 0))
                 for m in range(2, 13) for s in range(1, m))
  assert patterns == expected == 19356
  assert 0 < fallbacks < 0.02 * patterns  # The check bites only on ill-conditioned sets.


def test_run_waits_for_one_more_worker_when_the_fastest_k_do_not_decode():
  # m = 10, s = 2, cyclic (key 1): without workers 1 and 9, B_F has cond ~4e5 and the
  # float32 B leaves a 1e-5 residual, so the master also waits for worker 1 (3 s).
  problem = _problem(n=60, d=3)
  data = coded.gradient_code_problem(problem, "cyclic", 10, 2, jax.random.key(1))
  with pytest.raises(gc_lib.NotDecodableError, match=r"without workers \[1, 9\]"):
    coded.decode_weights(data, np.arange(10) % 8 != 1)
  delays = np.tile(np.r_[1.0, 3.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 5.0], (6, 1))
  received, waited = optimize.responder_masks(data, jnp.asarray(delays), 8)
  np.testing.assert_array_equal(waited, 9)
  np.testing.assert_array_equal(received[0], np.arange(10) != 9)
  trace = coded.run(problem, data, jnp.asarray(delays), 8, step_size=0.1)
  np.testing.assert_allclose(np.diff(trace.time), 3.0)  # The 9th, not the 8th (1.7 s).
  full = coded.simulate(problem, coded.encode_problem(problem, "uncoded", 1, 10,
                                                      jax.random.key(0)),
                        jnp.ones((6, 10), bool), step_size=0.1)
  np.testing.assert_allclose(trace.weights, full, rtol=1e-4, atol=1e-5)


def test_gradient_code_errors():
  with pytest.raises(ValueError, match=r"\(s\+1\) to divide m; allowed s: \[0, 1, 2, 5\]"):
    coded.gradient_code("fractional_repetition", 6, 3)
  with pytest.raises(ValueError, match="tolerates at most s=1; allowed: k >= 7"):
    optimize.check_gradient_code_k(4, 8, 1)
  with pytest.raises(ValueError, match="valid: "):
    coded.gradient_code("mds", 4, 1)


# ---- compiled across devices ----

@pytest.mark.parametrize("optimizer", ["gd", "lbfgs"])
def test_shard_map_run_equals_single_device(optimizer):
  problem = _problem(n=64, d=5)
  data = coded.encode_problem(problem, "gaussian", 2, 8, jax.random.key(0))
  received = coded.fastest_k_mask(
      coded.sample_delays("pareto", jax.random.key(1), 12, 8), 5)
  kwargs = dict(optimizer=optimizer, step_size=0.5 if optimizer == "lbfgs" else None)
  single = coded.simulate(problem, data, received, **kwargs)
  for devices in (8, 4):
    sharded = coded.simulate(problem, data, received, mesh=coded.make_mesh(devices), **kwargs)
    np.testing.assert_allclose(sharded, single, rtol=1e-4, atol=1e-5)


def test_gradient_code_under_shard_map_matches_full_gd():
  problem = _problem(n=64, d=5)
  data = coded.gradient_code_problem(problem, "cyclic", 8, 2, jax.random.key(0))
  received = coded.fastest_k_mask(coded.sample_delays("bimodal", jax.random.key(1), 10, 8), 6)
  ws = coded.simulate(problem, data, received, mesh=coded.make_mesh(8), step_size=0.1)
  full = coded.simulate(problem, coded.encode_problem(problem, "uncoded", 1, 8, jax.random.key(0)),
                        jnp.ones((10, 8), bool), step_size=0.1)
  np.testing.assert_allclose(ws, full, rtol=1e-4, atol=1e-5)


def test_diagnostics_time_to_epsilon_and_floor():
  times = np.array([0.0, 1.0, 2.0, 3.0])
  sub = np.array([5.0, 0.5, 0.05, 0.04])
  assert coded.time_to_epsilon(times, sub, 0.1) == 2.0
  assert coded.time_to_epsilon(times, sub, 0.01) == float("inf")
  assert coded.error_floor(sub, 0.5) == pytest.approx(0.045)
