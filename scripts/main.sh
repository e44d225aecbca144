#!/usr/bin/env bash
# The main job: installs what it needs (scripts/setup.sh), analyses the example deployments, renders every
# daemon's configuration, then brings the lab up (the paper's deployment with the real daemons), verifies
# it with the real clients, runs the seed's two experiments (api: Keystone while a replica fails, ~1 minute;
# l3: network-node failover for hastack beside the seed's and Neutron's policies, ~15 minutes; --quick:
# hastack only, ~3 minutes), prints results/REPORT.md, and tears the lab down (--keep leaves it up).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
hastack_setup
cd "$HASTACK_ROOT"
keep=0
bench_args=()
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --quick) bench_args=(--policy hastack --repeat 3) ;;
    *) echo "usage: scripts/main.sh [--keep] [--quick]" >&2; exit 2 ;;
  esac
done
mkdir -p results
hastack=("$VENV/bin/hastack")

for example in paper minimal; do
  echo "[main] hastack analyze examples/$example.yaml" >&2
  "${hastack[@]}" analyze "examples/$example.yaml" --graph "results/$example-analysis.png"
  "${hastack[@]}" analyze "examples/$example.yaml" --json >"results/$example-analysis.json"
done
echo "[main] hastack render examples/paper.yaml -o results/render-paper" >&2
"${hastack[@]}" render examples/paper.yaml -o results/render-paper

if [ "$keep" -eq 0 ]; then
  trap 'echo "[main] hastack lab down" >&2; "${hastack[@]}" lab down' EXIT
fi
echo "[main] hastack lab up examples/paper.yaml" >&2
"${hastack[@]}" lab up examples/paper.yaml
echo "[main] hastack lab verify" >&2
"${hastack[@]}" lab verify
"${hastack[@]}" lab status
echo "[main] hastack bench api examples/paper.yaml --repeat 1 -o results  (the seed's Fig. 4a)" >&2
"${hastack[@]}" bench api examples/paper.yaml --repeat 1 -o results
echo "[main] hastack bench l3 examples/paper.yaml ${bench_args[*]} -o results  (the seed's Fig. 4b)" >&2
"${hastack[@]}" bench l3 examples/paper.yaml "${bench_args[@]}" -o results
cat results/REPORT.md
echo "[main] done: results/ holds the analyses, the rendered configuration, api/l3 JSON and plots, REPORT.md" >&2
