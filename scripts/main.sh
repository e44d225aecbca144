#!/usr/bin/env bash
# The main job: installs what it needs (scripts/setup.sh), then analyses the example deployments, draws
# their failure-impact graphs and renders every daemon's configuration into results/.
# (The lab and its failover experiments take over this command as they land; see README "Status".)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
hastack_setup
cd "$HASTACK_ROOT"
mkdir -p results
hastack=("$VENV/bin/hastack")

for example in paper minimal; do
  echo "[main] hastack analyze examples/$example.yaml" >&2
  "${hastack[@]}" analyze "examples/$example.yaml" --graph "results/$example-analysis.png"
  "${hastack[@]}" analyze "examples/$example.yaml" --json >"results/$example-analysis.json"
done
echo "[main] hastack render examples/paper.yaml -o results/render-paper" >&2
"${hastack[@]}" render examples/paper.yaml -o results/render-paper
echo "[main] done: results/ holds the analyses (JSON, PNG) and the rendered configuration" >&2
