"""Multi-task data: vendored UCI Adult / German Credit counts and label balance against
their published values, the TFDS builds, digits_two_task, the CSV loader, bad names."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from tradeoffs.data import multitask
from tradeoffs.data import uci


def test_adult_raw_rows_counts_and_label_balance():
  train, test = uci.adult_rows("train"), uci.adult_rows("test")
  assert (len(train), len(test)) == (32_561, 16_281)  # UCI: 48,842 in all
  # adult.names: 23.93% of the 48,842 earn > 50K (7,841 train + 3,846 test = 11,687).
  assert collections.Counter(r["income"] for r in train) == {"<=50K": 24_720, ">50K": 7_841}
  assert collections.Counter(r["income"] for r in test) == {"<=50K": 12_435, ">50K": 3_846}
  assert all(not r["income"].endswith(".") for r in test)  # the test file's dots are gone
  assert collections.Counter(r["sex"] for r in train) == {"Male": 21_790, "Female": 10_771}


def test_german_raw_rows_and_good_loan_convention():
  rows = uci.german_rows()
  assert len(rows) == 1000
  assert collections.Counter(r["credit_class"] for r in rows) == {1: 700, 2: 300}
  # The reference's `is_good_loan = class - 1` would make the 300 bad loans positive.
  assert sum(multitask.GERMAN_TASKS["good_loan"](r) for r in rows) == 700


def test_german_tfds_build_and_encoding(tmp_path):
  ds = multitask.load("uci_german", data_dir=str(tmp_path))
  rows = uci.german_rows()
  assert (len(ds.train), len(ds.test)) == (800, 200)
  assert ds.task_names == ("good_loan", "high_credit") and ds.group_name == "sex"
  labels = np.concatenate([ds.train.labels, ds.test.labels])
  ids = np.concatenate([ds.train.ids, ds.test.ids])
  by_id = {i: r for i, r in enumerate(rows)}
  np.testing.assert_array_equal(labels[:, 0], [by_id[i]["credit_class"] == 1 for i in ids])
  np.testing.assert_array_equal(labels[:, 1], [by_id[i]["credit_amount"] > 2000 for i in ids])
  groups = np.concatenate([ds.train.groups, ds.test.groups])
  assert groups.sum() == sum(r["personal_status"] in ("A92", "A95") for r in rows)
  # Inputs: standardised numerics (train mean 0, std 1), one-hot categoricals, no leakage.
  names = ds.feature_names
  assert not any(n.startswith(("credit_amount", "personal_status", "credit_class"))
                 for n in names)
  duration = names.index("duration")
  np.testing.assert_allclose(ds.train.inputs[:, duration].mean(), 0, atol=1e-5)
  np.testing.assert_allclose(ds.train.inputs[:, duration].std(), 1, atol=1e-4)
  purpose = [i for i, n in enumerate(names) if n.startswith("purpose=")]
  np.testing.assert_array_equal(ds.train.inputs[:, purpose].sum(1), 1.0)
  assert set(np.unique(ds.train.ids)).isdisjoint(ds.test.ids)


def test_digits_two_task_labels_and_group(tmp_path):
  from tradeoffs.data import sources
  ds = multitask.load("digits_two_task", data_dir=str(tmp_path))
  digits = sources.load("digits_groups", data_dir=str(tmp_path))
  assert ds.train.inputs.shape == (1437, 64) and ds.test.labels.shape == (360, 2)
  np.testing.assert_array_equal(ds.test.labels[:, 0], digits.test.labels % 2)
  np.testing.assert_array_equal(ds.test.labels[:, 1], digits.test.labels > 4)
  np.testing.assert_array_equal(ds.test.groups, digits.test.groups[:, 0])
  # Head-exclusive negatives exist for both tasks (6, 8 for odd; 1, 3 for > 4).
  y = ds.train.labels
  assert ((y[:, 0] == 0) & (y[:, 1] == 1)).sum() > 200
  assert ((y[:, 1] == 0) & (y[:, 0] == 1)).sum() > 200


def test_csv_loader(tmp_path):
  path = tmp_path / "lsac.csv"
  path.write_text("zfygpa,pass_bar,sex,lsat,race\n"
                  "0.5,1,female,40,white\n-0.2,1,male,30,black\n1.1,0,female,45,white\n"
                  "-1.0,0,male,20,other\n0.0,1,male,35,white\n")
  ds = multitask.load_csv(str(path), tasks={"gpa": ("zfygpa", 0.0), "bar": ("pass_bar", None)},
                          sensitive=("sex", "female"), features=("lsat", "race"),
                          test_fraction=0.4, seed=0)
  assert len(ds.train) == 3 and len(ds.test) == 2
  assert ds.feature_names == ("lsat", "race=black", "race=other", "race=white")
  ids = np.concatenate([ds.train.ids, ds.test.ids])
  labels = np.concatenate([ds.train.labels, ds.test.labels])
  gpa = np.array([0.5, -0.2, 1.1, -1.0, 0.0])
  np.testing.assert_array_equal(labels[:, 0], gpa[ids] > 0)
  np.testing.assert_array_equal(labels[:, 1], np.array([1, 1, 0, 0, 1])[ids])
  np.testing.assert_array_equal(np.concatenate([ds.train.groups, ds.test.groups]),
                                np.array([1, 0, 1, 0, 0])[ids])
  with pytest.raises(ValueError, match="not in the header"):
    multitask.load_csv(str(path), tasks={"a": ("gpa", 0.0), "b": ("pass_bar", None)},
                       sensitive=("sex", "female"), features=("lsat",))
  with pytest.raises(ValueError, match="task or sensitive"):
    multitask.load_csv(str(path), tasks={"a": ("zfygpa", 0.0), "b": ("pass_bar", None)},
                       sensitive=("sex", "female"), features=("sex",))
  with pytest.raises(ValueError, match="0/1"):
    multitask.load_csv(str(path), tasks={"a": ("zfygpa", None), "b": ("pass_bar", None)},
                       sensitive=("sex", "female"), features=("lsat",))


def test_check_names_what_the_dataset_lacks():
  assert multitask.check("uci_adult") == (("income", "capital_gain"), "sex")
  with pytest.raises(ValueError, match="has tasks"):
    multitask.check("uci_adult", ("income", "good_loan"))
  with pytest.raises(ValueError, match="sensitive attribute 'age'"):
    multitask.check("uci_adult", None, "age")
  with pytest.raises(ValueError, match="not a multi-task dataset"):
    multitask.check("digits", None, None)
