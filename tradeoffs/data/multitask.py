"""Multi-task datasets with a sensitive attribute: flat inputs, T binary task labels, a 0/1
group (for MTA-F, `tradeoffs.fairness.multitask`).

    ds = multitask.load("digits_two_task")                  # the offline default
    ds = multitask.load("uci_adult", tasks=("income", "capital_gain"), sensitive="sex")
    ds.train.inputs [N, D] float32, ds.train.labels [N, T] int32, ds.train.groups [N] int32
    ds = multitask.load_csv(path, tasks={"pass_bar": ("pass_bar", None)},
                            sensitive=("sex", "female"), features=(...))

Registered datasets (`TASK_DATASETS`; tasks and sensitive attributes by name, the first
ones the defaults):

- `digits_two_task` (offline, from `digits_groups`: same images, split and rotated
  subgroup): inputs the 64 pixels in [0, 1]; tasks `odd` (the digit is odd) and
  `greater_than_4` (the digit is 5–9); sensitive attribute `subgroup` (1 = the rotated 12%).
  Train 1,437 / test 360. A task's negatives that are positive for the other task (its
  head-exclusive negatives): even digits > 4 (6, 8) for `odd`, odd digits ≤ 4 (1, 3) for
  `greater_than_4`.
- `uci_adult` (`tradeoffs.data.uci`): tasks `income` (> 50K) and `capital_gain` (> 0), as
  in the MTA-F code; sensitive `sex` (1 = Female, the reference's coding) or `race`
  (1 = not White). Train 32,561 / test 16,281.
- `uci_german`: tasks `good_loan` (credit class 1) and `high_credit` (credit amount >
  2000), as in the MTA-F code (but with good = class 1; see `tradeoffs.data.uci`);
  sensitive `sex` (1 = female: personal status A92 or A95) or `age` (1 = age ≤ 25). A
  seeded 80/20 split (`numpy.random.default_rng(0)` permutation; 800 / 200).

Tabular inputs: numeric columns standardised with the train split's mean and std,
categorical columns one-hot over the values seen in any split (sorted). The columns a task
or a sensitive attribute is derived from are never inputs, nor the label; as in the MTA-F
code, Adult also leaves out `relationship` (Husband / Wife encode sex) and `capital_loss`.
"""

from __future__ import annotations

import csv
import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tradeoffs.data import sources
from tradeoffs.data import uci


@dataclasses.dataclass(frozen=True)
class TaskSplit:
  inputs: np.ndarray   # float32 [N, D]
  labels: np.ndarray   # int32 [N, T], 0/1
  groups: np.ndarray   # int32 [N], 0/1 sensitive attribute
  ids: np.ndarray      # int32 [N], stable example ids

  def __len__(self) -> int:
    return len(self.labels)


@dataclasses.dataclass(frozen=True)
class TaskDataset:
  name: str
  train: TaskSplit
  test: TaskSplit
  task_names: tuple[str, ...]
  group_name: str
  feature_names: tuple[str, ...]

  @property
  def num_tasks(self) -> int:
    return len(self.task_names)

  def positive_rates(self) -> np.ndarray:
    """Per task, the training positive rate (the reference's threshold rule)."""
    return self.train.labels.mean(axis=0)


@dataclasses.dataclass(frozen=True)
class TaskDatasetSpec:
  tasks: tuple[str, ...]        # available tasks; the first two are the default
  sensitive: tuple[str, ...]    # available sensitive attributes; the first is the default
  loader: Callable[..., TaskDataset]  # loader(tasks, sensitive, data_dir) -> TaskDataset


TASK_DATASETS: dict[str, TaskDatasetSpec] = {}


def register_task_dataset(name: str, spec: TaskDatasetSpec) -> None:
  TASK_DATASETS[name] = spec


def check(name: str, tasks: Sequence[str] | None = None, sensitive: str | None = None
          ) -> tuple[tuple[str, ...], str]:
  """(tasks, sensitive) with defaults filled in; ValueError naming what the dataset lacks."""
  if name not in TASK_DATASETS:
    raise ValueError(f"dataset {name!r} is not a multi-task dataset; choose from "
                     f"{sorted(TASK_DATASETS)}")
  spec = TASK_DATASETS[name]
  tasks = tuple(tasks) if tasks else spec.tasks[:2]
  missing = [t for t in tasks if t not in spec.tasks]
  if missing or len(tasks) < 2 or len(set(tasks)) != len(tasks):
    raise ValueError(f"tasks {list(tasks)}: dataset {name!r} has tasks {list(spec.tasks)}; "
                     "choose at least 2 distinct ones")
  sensitive = sensitive or spec.sensitive[0]
  if sensitive not in spec.sensitive:
    raise ValueError(f"sensitive attribute {sensitive!r}: dataset {name!r} has "
                     f"{list(spec.sensitive)}")
  return tasks, sensitive


def load(name: str, tasks: Sequence[str] | None = None, sensitive: str | None = None,
         data_dir: str | None = None) -> TaskDataset:
  tasks, sensitive = check(name, tasks, sensitive)
  return TASK_DATASETS[name].loader(tasks, sensitive, data_dir)


# ---------------------------------------------------------------------------------------
# digits_two_task.

DIGIT_TASKS = {"odd": lambda y: y % 2 == 1, "greater_than_4": lambda y: y > 4}


def _digits_two_task(tasks, sensitive, data_dir) -> TaskDataset:
  ds = sources.load("digits_groups", data_dir=data_dir)

  def split(s: sources.ArraySplit) -> TaskSplit:
    labels = np.stack([DIGIT_TASKS[t](s.labels) for t in tasks], axis=1).astype(np.int32)
    groups = s.groups[:, list(s.group_names).index(sensitive)].astype(np.int32)
    return TaskSplit(s.images.reshape(len(s), -1).astype(np.float32), labels, groups,
                     s.ids.astype(np.int32))

  return TaskDataset("digits_two_task", split(ds.train), split(ds.test), tuple(tasks),
                     sensitive, tuple(f"pixel_{i}" for i in range(64)))


# ---------------------------------------------------------------------------------------
# Tabular encoding (shared by the UCI sets and user CSVs).


def encode(splits: Sequence[Sequence[Mapping[str, Any]]], numeric: Sequence[str],
           categorical: Sequence[str]) -> tuple[list[np.ndarray], tuple[str, ...]]:
  """Inputs per split: numeric columns standardised by the first split's mean and std,
  categorical ones one-hot over the sorted values of all splits. Returns (arrays, names)."""
  train = splits[0]
  columns, names = [[] for _ in splits], []
  for col in numeric:
    values = np.asarray([float(r[col]) for r in train])
    mean, std = values.mean(), values.std()
    std = std if std > 0 else 1.0
    for out, rows in zip(columns, splits):
      out.append(((np.asarray([float(r[col]) for r in rows]) - mean) / std)[:, None])
    names.append(col)
  for col in categorical:
    vocab = sorted({str(r[col]) for rows in splits for r in rows})
    index = {v: i for i, v in enumerate(vocab)}
    for out, rows in zip(columns, splits):
      onehot = np.zeros((len(rows), len(vocab)))
      onehot[np.arange(len(rows)), [index[str(r[col])] for r in rows]] = 1.0
      out.append(onehot)
    names += [f"{col}={v}" for v in vocab]
  arrays = [np.concatenate(c, axis=1).astype(np.float32) if c else
            np.zeros((len(rows), 0), np.float32) for c, rows in zip(columns, splits)]
  return arrays, tuple(names)


def _table(name, splits, tasks, sensitive, task_fns, sensitive_fns, numeric, categorical,
           excluded) -> TaskDataset:
  keep_numeric = [c for c in numeric if c not in excluded]
  keep_categorical = [c for c in categorical if c not in excluded]
  inputs, names = encode(splits, keep_numeric, keep_categorical)
  out = []
  for x, rows in zip(inputs, splits):
    labels = np.asarray([[int(task_fns[t](r)) for t in tasks] for r in rows], np.int32)
    groups = np.asarray([int(sensitive_fns[sensitive](r)) for r in rows], np.int32)
    out.append(TaskSplit(x, labels.reshape(len(rows), len(tasks)), groups,
                         np.asarray([int(r["id"]) for r in rows], np.int32)))
  return TaskDataset(name, out[0], out[1], tuple(tasks), sensitive, names)


def _columns(columns, excluded):
  return ([n for n, numeric in columns if numeric and n not in excluded],
          [n for n, numeric in columns if not numeric and n not in excluded])


ADULT_TASKS = {"income": lambda r: r["income"] == ">50K",
               "capital_gain": lambda r: r["capital_gain"] > 0}
ADULT_SENSITIVE = {"sex": lambda r: r["sex"] == "Female", "race": lambda r: r["race"] != "White"}
ADULT_SOURCES = {"income": "income", "capital_gain": "capital_gain", "sex": "sex",
                 "race": "race"}


def _adult(tasks, sensitive, data_dir) -> TaskDataset:
  splits = [uci.load_rows("uci_adult", s, data_dir) for s in ("train", "test")]
  excluded = {"income", "capital_gain", "capital_loss", "relationship", "sex",
              ADULT_SOURCES[sensitive]}
  numeric, categorical = _columns(uci.ADULT_COLUMNS, excluded)
  return _table("uci_adult", splits, tasks, sensitive, ADULT_TASKS, ADULT_SENSITIVE,
                numeric, categorical, excluded)


GERMAN_TASKS = {"good_loan": lambda r: r["credit_class"] == 1,
                "high_credit": lambda r: r["credit_amount"] > 2000}
GERMAN_SENSITIVE = {"sex": lambda r: r["personal_status"] in uci.GERMAN_FEMALE,
                    "age": lambda r: r["age"] <= 25}
GERMAN_SOURCES = {"sex": "personal_status", "age": "age"}
GERMAN_TEST_FRACTION = 0.2


def split_rows(rows: Sequence[Any], test_fraction: float, seed: int = 0
               ) -> tuple[list[Any], list[Any]]:
  """(train, test) rows: a `default_rng(seed)` permutation, the first `test_fraction` test;
  each part in the original order."""
  order = np.random.default_rng(seed).permutation(len(rows))
  num_test = int(round(test_fraction * len(rows)))
  test = set(order[:num_test].tolist())
  return ([r for i, r in enumerate(rows) if i not in test],
          [r for i, r in enumerate(rows) if i in test])


def _german(tasks, sensitive, data_dir) -> TaskDataset:
  rows = uci.load_rows("uci_german", "train", data_dir)
  rows.sort(key=lambda r: r["id"])
  splits = split_rows(rows, GERMAN_TEST_FRACTION)
  excluded = {"credit_class", "credit_amount", "personal_status", GERMAN_SOURCES[sensitive]}
  numeric, categorical = _columns(uci.GERMAN_COLUMNS, excluded)
  return _table("uci_german", splits, tasks, sensitive, GERMAN_TASKS, GERMAN_SENSITIVE,
                numeric, categorical, excluded)


register_task_dataset("digits_two_task", TaskDatasetSpec(
    tuple(DIGIT_TASKS), ("subgroup",), _digits_two_task))
register_task_dataset("uci_adult", TaskDatasetSpec(
    tuple(ADULT_TASKS), tuple(ADULT_SENSITIVE), _adult))
register_task_dataset("uci_german", TaskDatasetSpec(
    tuple(GERMAN_TASKS), tuple(GERMAN_SENSITIVE), _german))


# ---------------------------------------------------------------------------------------
# A user's CSV file (e.g. LSAC).


def load_csv(path: str, *, tasks: Mapping[str, tuple[str, float | None]],
             sensitive: tuple[str, str], features: Sequence[str],
             test_fraction: float = 0.2, seed: int = 0, name: str = "csv") -> TaskDataset:
  """A multi-task dataset from a CSV file with a header row.

  Columns:
    tasks: task name -> (column, threshold): label = float(value) > threshold, or, with
      threshold None, the column holds 0/1 labels. E.g. LSAC: {"gpa": ("zfygpa", 0.0),
      "bar": ("pass_bar", None)}.
    sensitive: (column, value): group 1 where the cell equals `value` (as text), else 0.
    features: the input columns; a column whose every value parses as a number is numeric
      (standardised), any other is categorical (one-hot). Task and sensitive columns may not
      be features.
  Rows are split by `split_rows(rows, test_fraction, seed)`; ids are 0-based data-row
  numbers.
  """
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    rows = [dict(r, id=i) for i, r in enumerate(reader)]
  needed = [c for c, _ in tasks.values()] + [sensitive[0]] + list(features)
  missing = [c for c in needed if c not in header]
  if missing:
    raise ValueError(f"{path}: columns {missing} are not in the header {header}")
  leaked = set(features) & ({c for c, _ in tasks.values()} | {sensitive[0]})
  if leaked:
    raise ValueError(f"features {sorted(leaked)} are task or sensitive columns")
  if len(tasks) < 2:
    raise ValueError(f"tasks {list(tasks)}: a multi-task dataset needs at least 2")
  for task, (column, threshold) in tasks.items():
    if threshold is None and {r[column].strip() for r in rows} - {"0", "1"}:
      raise ValueError(f"task {task!r}: column {column!r} must hold 0/1 labels (or give a "
                       "threshold)")

  def is_number(text: str) -> bool:
    try:
      float(text)
      return True
    except ValueError:
      return False

  numeric = [c for c in features if all(is_number(r[c]) for r in rows)]
  categorical = [c for c in features if c not in numeric]
  task_fns = {t: (lambda r, c=c, th=th: float(r[c]) > th if th is not None else
                  int(r[c]) == 1) for t, (c, th) in tasks.items()}
  sensitive_fns = {sensitive[0]: lambda r: str(r[sensitive[0]]).strip() == str(sensitive[1])}
  splits = split_rows(rows, test_fraction, seed)
  return _table(name, splits, tuple(tasks), sensitive[0], task_fns, sensitive_fns, numeric,
                categorical, set())
