#!/usr/bin/env bash
# The overhead figures of bench/RESULTS.md in one run of the committed tree (issue 15): the
# README commands' fresh-clone set-up (bench.install), then P1 in the quickstart's own install
# and the peer ratio (at the bench's sequence length, 128, and at the quickstart's, 32) in the
# test command's install (both fresh clones of HEAD, kept from the set-up), then their sections
# copied to bench/results/ and RESULTS.md composed again.
#   bash bench/issue15.sh [OUT]      # about 80 minutes on 2 cores; OUT defaults to bench/out
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-bench/out}")
keep=$(mktemp -d /tmp/lora-hpo-bench-XXXXXX)
trap 'rm -rf "$keep"' EXIT  # the clones go, whether or not a bench fails
python -m bench.install --out "$out/install" --keep "$keep"
(cd "$keep/Quickstart/lora-hpo" && .venv/bin/python -m bench.overhead.p1 --out "$out/p1")
(cd "$keep/Tests/lora-hpo" && .venv/bin/python -m bench.overhead.peer_ratio --repeats 3 --out "$out/peer")
(cd "$keep/Tests/lora-hpo" && .venv/bin/python -m bench.overhead.peer_ratio --repeats 3 --max-length 32 --out "$out/peer-len32")
for stem in install p1 peer peer-len32; do cp "$out/$stem/$stem.json" "$out/$stem/$stem.md" bench/results/; done
python -m bench.results_md bench/results
