"""The synthetic contact process is a pure function of its seed; notifications are scored
against the truth and agree with the closed form their mechanism implies."""

import math

import numpy as np
import pytest

from tradeoffs.privacy import exposure

SMALL = exposure.ProcessConfig(people=400, days=10, contacts_per_day=1.0, max_contacts=8,
                               initial_infected=0.03, transmission=0.1)


def test_process_is_a_pure_function_of_its_seed():
  a, b = exposure.simulate(3, SMALL), exposure.simulate(3, SMALL)
  for field in ("edges", "edge_days", "infected_day", "diagnosed"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  c = exposure.simulate(4, SMALL)
  assert not (a.edges.shape == c.edges.shape and np.array_equal(a.edges, c.edges))


def test_process_respects_the_degree_cap_and_counts_diagnosed_contacts():
  p = exposure.simulate(0, SMALL)
  assert p.degrees.max() <= SMALL.max_contacts
  assert np.all(p.edges[:, 0] < p.edges[:, 1])
  assert len({tuple(e) for e in p.edges.tolist()}) == len(p.edges)  # Distinct contacts.
  counts = np.zeros(SMALL.people, int)  # Reference: a loop over contacts.
  for i, j in p.edges.tolist():
    counts[i] += p.diagnosed[j]
    counts[j] += p.diagnosed[i]
  np.testing.assert_array_equal(p.counts, counts)
  np.testing.assert_array_equal(p.exposed, counts >= 1)
  late = p.infected_day > SMALL.days - 1 - SMALL.diagnosis_delay
  assert not np.any(p.diagnosed & late) and not np.any(p.diagnosed & (p.infected_day < 0))
  assert p.diagnosed.sum() > 0 and 0 < p.exposed.mean() < 1


def test_exact_release_is_perfect_and_noisy_releases_are_deterministic():
  p = exposure.simulate(0, SMALL)
  exact = exposure.notify(p, "exact")
  assert exact.metrics["precision"] == 1 and exact.metrics["recall"] == 1
  assert exact.metrics["false_alarms_per_exposure"] == 0
  for mechanism in ("randomized_response", "laplace", "gaussian"):
    r1 = exposure.notify(p, mechanism, 1.0, seed=5)
    r2 = exposure.notify(p, mechanism, 1.0, seed=5)
    np.testing.assert_array_equal(r1.estimate, r2.estimate)
    assert not np.array_equal(r1.estimate, exposure.notify(p, mechanism, 1.0, seed=6).estimate)


def test_score_against_hand_counts():
  notified = np.array([1, 1, 0, 0, 1, 0], bool)
  exposed = np.array([1, 0, 1, 0, 1, 1], bool)
  eligible = np.array([1, 1, 1, 1, 1, 0], bool)
  m = exposure.score(notified, exposed, eligible)
  assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
  assert m["false_alarms_per_exposure"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("mechanism", ["randomized_response", "laplace", "gaussian"])
def test_measured_notifications_agree_with_the_closed_form(mechanism):
  """Recall and false alarms per exposure, averaged over 40 noise draws on one process,
  against the expectations from P(notify | c, d)."""
  p = exposure.simulate(1, SMALL)
  runs = [exposure.notify(p, mechanism, 2.0, seed=s) for s in range(40)]
  for key in ("recall", "false_alarms_per_exposure"):
    values = np.array([r.metrics[key] for r in runs])
    expected = runs[0].expected[key]
    assert abs(values.mean() - expected) <= 4 * values.std(ddof=1) / math.sqrt(len(values)) \
        + 1e-9, (key, values.mean(), expected)


def test_more_privacy_means_more_false_alarms_for_laplace():
  p = exposure.simulate(0, SMALL)
  fa = [exposure.notify(p, "laplace", e, seed=0).expected["false_alarms_per_exposure"]
        for e in (0.5, 2.0, 8.0, 32.0)]
  assert fa == sorted(fa, reverse=True)


@pytest.mark.parametrize("field,value,match", [
    ("people", 1, r"people=1 must be an integer >= 2"),
    ("transmission", 1.5, r"transmission=1.5 must be a rate in \[0, 1\]"),
    ("diagnosis_prob", -0.1, r"diagnosis_prob=-0.1 must be a rate"),
    ("contacts_per_day", 0.0, r"contacts_per_day=0.0 must be a finite number > 0"),
])
def test_bad_process_knobs(field, value, match):
  import dataclasses
  with pytest.raises(ValueError, match=match):
    dataclasses.replace(SMALL, **{field: value}).check()


def test_bad_release_arguments():
  p = exposure.simulate(0, SMALL)
  with pytest.raises(ValueError, match="must be a finite number > 0"):
    exposure.notify(p, "laplace", 0.0)
  with pytest.raises(ValueError, match="release 'shuffle' is unknown"):
    exposure.notify(p, "shuffle", 1.0)
