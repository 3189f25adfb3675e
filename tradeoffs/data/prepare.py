r"""Prepares TFDS datasets as ArrayRecord once, so training reads them without TensorFlow.

    pip install -e '.[prepare]'      # TensorFlow is needed only here, to download and parse
    python -m tradeoffs.data.prepare --datasets=mnist,cifar10 --data_dir=$TFDS_DATA_DIR

The embedded sets (digits, digits_groups) need no download and are built on first use;
naming them here builds them ahead of time.
"""

from __future__ import annotations

from absl import app
from absl import flags

from tradeoffs.data import builders
from tradeoffs.data import sources

_DATASETS = flags.DEFINE_list("datasets", ["digits", "digits_groups"],
                              f"Datasets to prepare; choose from {sorted(sources.DATASETS)}.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR or "
                                "~/tensorflow_datasets).")


def prepare(name: str, data_dir: str | None = None) -> str:
  spec = sources.spec_for(name)
  data_dir = data_dir or sources.default_data_dir()
  if spec.embedded:
    builder = builders.prepare_embedded(spec.tfds_name, data_dir)
  else:
    import tensorflow_datasets as tfds
    builder = tfds.builder(spec.tfds_name, data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
      builder.download_and_prepare(file_format="array_record")
  return str(builder.data_dir)


def main(argv):
  del argv
  unknown = [d for d in _DATASETS.value if d not in sources.DATASETS]
  if unknown:
    raise app.UsageError(f"--datasets has unknown {unknown}; choose from "
                         f"{sorted(sources.DATASETS)}")
  for name in _DATASETS.value:
    print(f"{name}: prepared in {prepare(name, _DATA_DIR.value)}")


if __name__ == "__main__":
  app.run(main)
