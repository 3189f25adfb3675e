"""Noisy digital exposure notification (Hammoud & Yu, arXiv 2011.03995; PAPERS.md §7).

    process = exposure.simulate(seed=0)                      # a pure function of its knobs
    result = exposure.notify(process, "laplace", epsilon=2.0, seed=0)
    result.metrics  # precision, recall, false alarms per true exposure, ...

The contact process (numpy, seeded): `people` people over `days` days; each day
Poisson(contacts_per_day · people / 2) random pairs meet. A pair is a *contact* of the
window the first time it meets, unless either side already has `max_contacts` distinct
contacts (the public degree cap Δ that bounds every mechanism's sensitivity; the pair then
does not meet). Infection spreads along each day's meetings: a person infected on an
earlier day infects a susceptible partner with probability `transmission`. `initial
infected` people are infected on day 0; every infected person is diagnosed (tests
positive and uploads) with probability `diagnosis_prob` if infected at least
`diagnosis_delay` days before the end. Truth: a person is *exposed* when at least one of
their contacts is diagnosed (c ≥ 1, c = their count of diagnosed contacts); notifications
are scored over the people not themselves diagnosed.

Notification releases, each protecting every person's diagnosis bit at the given ε
(per person, over the whole window):
  * exact               the count c itself (no privacy; ε = inf): the reference.
  * randomized_response local DP: every person reports their bit once through randomized
                        response (kept with probability e^ε/(1+e^ε)); a user's count is the
                        debiased sum of their contacts' reports. ε-DP per person (one
                        release, the rest is post-processing).
  * laplace             central DP: the server answers every user's count with Lap(Δ/ε)
                        noise: one person's bit enters at most Δ counts (L1 sensitivity Δ).
  * gaussian            central (ε, δ)-DP: N(0, σ²) with σ the analytic Gaussian mechanism's
                        at L2 sensitivity √Δ.
A user is notified when the released (estimated) count is ≥ `threshold` (0.5: "at least
one diagnosed contact", the exact rule on the noiseless count).

Beside each measurement the closed-form expectation the mechanism implies (given the
realised contact graph): P(notify | c, d) per person, from the randomized-response
binomials or the Laplace/Gaussian tails (`expected`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from tradeoffs.privacy import mechanisms

RELEASES = ("exact",) + mechanisms.MECHANISMS


@dataclasses.dataclass(frozen=True)
class ProcessConfig:
  people: int = 2000
  days: int = 14
  contacts_per_day: float = 1.0
  max_contacts: int = 16
  initial_infected: float = 0.02
  transmission: float = 0.08
  diagnosis_prob: float = 0.6
  diagnosis_delay: int = 2

  def check(self, prefix: str = "") -> "ProcessConfig":
    def fail(key, allowed):
      raise ValueError(f"{prefix}{key}={getattr(self, key)!r} must be {allowed}")

    def integer(key, low):
      v = getattr(self, key)
      if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        fail(key, f"an integer >= {low}")

    integer("people", 2)
    integer("days", 1)
    integer("max_contacts", 1)
    integer("diagnosis_delay", 0)
    for key in ("initial_infected", "transmission", "diagnosis_prob"):
      v = getattr(self, key)
      if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not 0 <= v <= 1:
        fail(key, "a rate in [0, 1]")
    v = self.contacts_per_day
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or \
        not (math.isfinite(v) and v > 0):
      fail("contacts_per_day", "a finite number > 0")
    return self


@dataclasses.dataclass(frozen=True)
class Process:
  """One realisation: distinct contacts [E, 2] (i < j), their first day, infection days
  (-1: never) and diagnoses."""
  config: ProcessConfig
  seed: int
  edges: np.ndarray
  edge_days: np.ndarray
  infected_day: np.ndarray
  diagnosed: np.ndarray

  @property
  def degrees(self) -> np.ndarray:
    return np.bincount(self.edges.reshape(-1), minlength=self.config.people)

  @property
  def counts(self) -> np.ndarray:
    """Diagnosed contacts of each person (the exact exposure count c)."""
    d = self.diagnosed.astype(np.int64)
    return (np.bincount(self.edges[:, 0], weights=d[self.edges[:, 1]],
                        minlength=self.config.people)
            + np.bincount(self.edges[:, 1], weights=d[self.edges[:, 0]],
                          minlength=self.config.people)).astype(np.int64)

  @property
  def exposed(self) -> np.ndarray:
    return self.counts >= 1

  @property
  def eligible(self) -> np.ndarray:
    """Who is scored: everyone not diagnosed themselves."""
    return ~self.diagnosed


def simulate(seed: int, config: ProcessConfig | None = None) -> Process:
  """The contact process for `seed` (see the module docstring); a pure function."""
  config = (config or ProcessConfig()).check()
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed={seed!r} must be an integer >= 0")
  rng = np.random.default_rng([int(seed), 0x5EED])
  n = config.people
  infected_day = np.full(n, -1, np.int64)
  first = rng.permutation(n)[:max(1, int(round(config.initial_infected * n)))]
  infected_day[first] = 0
  degree = np.zeros(n, np.int64)
  pairs: dict[int, int] = {}  # i * n + j -> first day
  for day in range(config.days):
    m = int(rng.poisson(config.contacts_per_day * n / 2))
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    met_a, met_b = [], []
    for i, j in zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()):
      if i == j:
        continue
      key = i * n + j
      if key not in pairs:
        if degree[i] >= config.max_contacts or degree[j] >= config.max_contacts:
          continue
        pairs[key] = day
        degree[i] += 1
        degree[j] += 1
      met_a.append(i)
      met_b.append(j)
    met_a, met_b = np.asarray(met_a, np.int64), np.asarray(met_b, np.int64)
    draws = rng.random((2, met_a.size))  # Both directions of every meeting, drawn always.
    infectious = (infected_day >= 0) & (infected_day < day)
    for src, dst, u in ((met_a, met_b, draws[0]), (met_b, met_a, draws[1])):
      hit = infectious[src] & (infected_day[dst] < 0) & (u < config.transmission)
      infected_day[dst[hit]] = day
  tested = rng.random(n) < config.diagnosis_prob
  diagnosed = (infected_day >= 0) & (infected_day <= config.days - 1 - config.diagnosis_delay) \
      & tested
  keys = np.fromiter(pairs.keys(), np.int64, len(pairs))
  order = np.argsort(keys, kind="stable")
  keys = keys[order]
  edges = np.stack([keys // n, keys % n], axis=1)
  edge_days = np.fromiter(pairs.values(), np.int64, len(pairs))[order]
  return Process(config=config, seed=int(seed), edges=edges, edge_days=edge_days,
                 infected_day=infected_day, diagnosed=diagnosed)


def _neighbour_sum(process: Process, values: np.ndarray) -> np.ndarray:
  e, n = process.edges, process.config.people
  v = np.asarray(values, np.float64)
  return (np.bincount(e[:, 0], weights=v[e[:, 1]], minlength=n)
          + np.bincount(e[:, 1], weights=v[e[:, 0]], minlength=n))


@dataclasses.dataclass(frozen=True)
class Release:
  mechanism: str
  epsilon: float
  delta: float | None
  estimate: np.ndarray          # [people] the released (estimated) count
  notified: np.ndarray          # [people] bool
  noise_std: float | None       # std of the count noise (RR: at the mean degree)
  metrics: dict[str, float]
  expected: dict[str, float]


def noise_parameters(mechanism: str, epsilon: float, delta: float, max_contacts: int
                     ) -> dict[str, float]:
  """The mechanism's noise at ε for degree cap Δ: Laplace scale, Gaussian σ, RR keep p."""
  if mechanism == "laplace":
    scale = mechanisms.laplace_scale(epsilon, max_contacts)
    return {"laplace_scale": scale, "noise_std": math.sqrt(2) * scale}
  if mechanism == "gaussian":
    sigma = mechanisms.analytic_gaussian_sigma(epsilon, delta, math.sqrt(max_contacts))
    return {"sigma": sigma, "noise_std": sigma}
  if mechanism == "randomized_response":
    return {"keep_probability": mechanisms.keep_probability(epsilon)}
  return {"noise_std": 0.0}


def _notify_probability(mechanism: str, counts: np.ndarray, degrees: np.ndarray,
                        epsilon: float, params: Mapping[str, float], threshold: float
                        ) -> np.ndarray:
  if mechanism == "exact":
    return (counts >= threshold).astype(np.float64)
  if mechanism == "laplace":
    return mechanisms.laplace_exceeds(counts, threshold, params["laplace_scale"])
  if mechanism == "gaussian":
    return mechanisms.gaussian_exceeds(counts, threshold, params["sigma"])
  out = np.zeros(counts.shape, np.float64)
  table: dict[tuple[int, int], float] = {}
  for i, (c, d) in enumerate(zip(counts.tolist(), degrees.tolist())):
    if (c, d) not in table:
      table[(c, d)] = mechanisms.rr_count_exceeds(c, d, threshold, epsilon)
    out[i] = table[(c, d)]
  return out


def score(notified: np.ndarray, exposed: np.ndarray, eligible: np.ndarray
          ) -> dict[str, float]:
  """Precision, recall, false alarms per true exposure, notified and exposed fractions."""
  notified, exposed = notified[eligible], exposed[eligible]
  tp = float(np.sum(notified & exposed))
  fp = float(np.sum(notified & ~exposed))
  fn = float(np.sum(~notified & exposed))
  positives = tp + fn
  return {
      "precision": tp / (tp + fp) if tp + fp else float("nan"),
      "recall": tp / positives if positives else float("nan"),
      "false_alarms_per_exposure": fp / positives if positives else float("nan"),
      "notified_fraction": float(notified.mean()) if notified.size else float("nan"),
      "exposed_fraction": float(exposed.mean()) if exposed.size else float("nan"),
      "true_positives": tp, "false_positives": fp, "false_negatives": fn,
  }


def notify(process: Process, mechanism: str, epsilon: float = math.inf, *, seed: int = 0,
           delta: float = 1e-5, threshold: float = 0.5) -> Release:
  """Release every user's exposure count through `mechanism` at ε (per person) and score
  the notifications against the truth; the noise is a pure function of (seed, process
  seed)."""
  if mechanism not in RELEASES:
    raise ValueError(f"release {mechanism!r} is unknown; choose from {list(RELEASES)}")
  if mechanism != "exact":
    epsilon = mechanisms.check_epsilon(epsilon)
  rng = np.random.default_rng([int(process.seed), int(seed), RELEASES.index(mechanism)])
  counts, degrees = process.counts, process.degrees
  cap = process.config.max_contacts
  params = noise_parameters(mechanism, epsilon, delta, cap)
  if mechanism == "exact":
    estimate = counts.astype(np.float64)
  elif mechanism == "randomized_response":
    reports = mechanisms.randomized_response(rng, process.diagnosed, epsilon)
    estimate = mechanisms.debias_rr_count(_neighbour_sum(process, reports), degrees, epsilon)
  elif mechanism == "laplace":
    estimate = counts + rng.laplace(0.0, params["laplace_scale"], counts.shape)
  else:
    estimate = mechanisms.gaussian(rng, counts, params["sigma"])
  notified = estimate >= threshold - 1e-9
  eligible, exposed = process.eligible, process.exposed
  metrics = score(notified, exposed, eligible)
  p = _notify_probability(mechanism, counts, degrees, epsilon, params, threshold)[eligible]
  e = exposed[eligible]
  etp, efp = float(p[e].sum()), float(p[~e].sum())
  positives = float(e.sum())
  expected = {
      "precision": etp / (etp + efp) if etp + efp else float("nan"),  # ratio of means
      "recall": etp / positives if positives else float("nan"),
      "false_alarms_per_exposure": efp / positives if positives else float("nan"),
  }
  if mechanism == "randomized_response":
    noise_std = float(mechanisms.rr_count_std(float(degrees.mean()), epsilon))
  else:
    noise_std = float(params.get("noise_std", 0.0))
  return Release(mechanism=mechanism, epsilon=float(epsilon),
                 delta=delta if mechanism == "gaussian" else None, estimate=estimate,
                 notified=notified, noise_std=noise_std, metrics=metrics, expected=expected)


def dinur_nissim_scale(n: int) -> float:
  """√n: Dinur & Nissim (2003) — count answers over n private bits perturbed by o(√n)
  let enough queries reconstruct all but o(n) bits; privacy needs noise Ω(√n)."""
  return math.sqrt(n)


def describe(process: Process) -> dict[str, Any]:
  """Summary numbers of one realisation."""
  degrees = process.degrees
  return {"people": process.config.people, "contacts": int(process.edges.shape[0]),
          "mean_degree": float(degrees.mean()), "max_degree": int(degrees.max()),
          "infected": int((process.infected_day >= 0).sum()),
          "diagnosed": int(process.diagnosed.sum()),
          "exposed_fraction": float(process.exposed[process.eligible].mean())}
