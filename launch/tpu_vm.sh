#!/bin/bash
# Installs tradeoffs on every worker of a Cloud TPU VM (or pod slice) and starts one
# experiment on all of them as one multi-controller JAX run.
#
# Usage (from a machine with gcloud and this checkout):
#   NAME=my-v4-32 ZONE=us-central2-b bash launch/tpu_vm.sh \
#       experiments.train --config=experiments/configs/cifar10_wrn28_10.py \
#       --workdir=gs://my-bucket/tradeoffs/wrn28_10
#   NAME=my-v5e-8 ZONE=us-west4-a INSTALL=0 bash launch/tpu_vm.sh experiments.train \
#       --config=experiments/configs/digits_mlp.py:smoke --workdir=/tmp/smoke
#
# What it runs (equivalent by hand):
#   gcloud compute tpus tpu-vm scp --recurse . $NAME:~/tradeoffs --zone=$ZONE --worker=all
#   gcloud compute tpus tpu-vm ssh $NAME --zone=$ZONE --worker=all --command \
#     "cd ~/tradeoffs && pip install -e '.[tpu]' && TRADEOFFS_DISTRIBUTED=1 python3 -m <module> ..."
# On a TPU VM, jax.distributed.initialize() needs no arguments: JAX reads the pod's
# topology from the TPU metadata. Every worker runs the same command; only process 0
# writes shared files, so use a gs:// (or otherwise shared) --workdir on multi-host slices.
# Re-running resumes from the workdir's last checkpoint.
#
# Environment: NAME, ZONE (required); PROJECT (optional gcloud project); INSTALL=0 skips
# copying and installing; REMOTE_DIR (default ~/tradeoffs); TFDS_DATA_DIR (prepared
# datasets, e.g. gs://my-bucket/tensorflow_datasets) is passed to the workers.

set -euo pipefail

: "${NAME:?set NAME to the TPU VM name}"
: "${ZONE:?set ZONE to the TPU VM zone}"
if [[ $# -lt 1 ]]; then
  echo "usage: NAME=... ZONE=... bash launch/tpu_vm.sh <module> [flags...]" >&2
  exit 2
fi
REMOTE_DIR="${REMOTE_DIR:-~/tradeoffs}"
INSTALL="${INSTALL:-1}"
GCLOUD_ARGS=(--zone="${ZONE}")
if [[ -n "${PROJECT:-}" ]]; then
  GCLOUD_ARGS+=(--project="${PROJECT}")
fi
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The binary and its flags, quoted for the remote shell.
COMMAND="$(printf '%q ' "$@")"
ENV_VARS="TRADEOFFS_DISTRIBUTED=1"
if [[ -n "${TFDS_DATA_DIR:-}" ]]; then
  ENV_VARS+=" TFDS_DATA_DIR=$(printf '%q' "${TFDS_DATA_DIR}")"
fi

if [[ "${INSTALL}" == "1" ]]; then
  # Copy the checkout (without build outputs) to every worker and install it for TPU.
  ARCHIVE="$(mktemp -t tradeoffs.XXXXXX.tar.gz)"
  trap 'rm -f "${ARCHIVE}"' EXIT
  tar -C "${REPO_ROOT}" --exclude=.git --exclude=build --exclude=workdirs \
      --exclude='*.egg-info' -czf "${ARCHIVE}" .
  gcloud compute tpus tpu-vm scp "${ARCHIVE}" "${NAME}:/tmp/tradeoffs.tar.gz" \
      "${GCLOUD_ARGS[@]}" --worker=all
  gcloud compute tpus tpu-vm ssh "${NAME}" "${GCLOUD_ARGS[@]}" --worker=all --command \
      "mkdir -p ${REMOTE_DIR} && tar -C ${REMOTE_DIR} -xzf /tmp/tradeoffs.tar.gz && \
       cd ${REMOTE_DIR} && python3 -m pip install -q -e '.[tpu]'"
fi

gcloud compute tpus tpu-vm ssh "${NAME}" "${GCLOUD_ARGS[@]}" --worker=all --command \
    "cd ${REMOTE_DIR} && ${ENV_VARS} python3 -m ${COMMAND}"
