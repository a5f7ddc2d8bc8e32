#!/usr/bin/env bash
# The overhead figures of bench/RESULTS.md in one run of the committed tree (issue 15): the
# README commands' fresh-clone set-up (bench.install), then P1 in the quickstart's own install
# and the peer ratio in the test command's install (both fresh clones of HEAD, kept from the
# set-up), then their sections copied to bench/results/ and RESULTS.md composed again.
#   bash bench/issue15.sh [OUT]      # about an hour on 2 cores; OUT defaults to bench/out
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-bench/out}")
keep=$(mktemp -d /tmp/lora-hpo-bench-XXXXXX)
trap 'rm -rf "$keep"' EXIT  # the clones go, whether or not a bench fails
python -m bench.install --out "$out/install" --keep "$keep"
(cd "$keep/Quickstart/lora-hpo" && .venv/bin/python -m bench.overhead.p1 --out "$out/p1")
(cd "$keep/Tests/lora-hpo" && .venv/bin/python -m bench.overhead.peer_ratio --repeats 3 --out "$out/peer")
for stem in install p1 peer; do cp "$out/$stem/$stem.json" "$out/$stem/$stem.md" bench/results/; done
python -m bench.results_md bench/results
