#!/usr/bin/env bash
# The main job: installs what it needs (scripts/setup.sh), analyses the example deployments, renders every
# daemon's configuration, then brings the lab up (the paper's deployment with the real daemons), verifies
# it with the real clients, runs the paper's two experiments (api: Keystone while a replica fails, ~1 minute;
# l3: network-node failover for hastack beside the paper's and Neutron's policies, ~20 minutes; --quick:
# hastack only, ~3 minutes), prints results/REPORT.md, and tears the lab down (--keep leaves it up).
# --openstack then runs the same l3 experiment on real Neutron 29 (`lab up --profile openstack`): hastack
# beside Neutron's own allow_automatic_l3agent_failover, into results/openstack/ (~45 minutes more).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
hastack_setup
cd "$HASTACK_ROOT"
keep=0
openstack=0
bench_args=()
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --quick) bench_args=(--policy hastack --repeat 3) ;;
    --openstack) openstack=1 ;;
    *) echo "usage: scripts/main.sh [--keep] [--quick] [--openstack]" >&2; exit 2 ;;
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
echo "[main] hastack bench api examples/paper.yaml --repeat 1 -o results  (the paper's Fig. 4a)" >&2
"${hastack[@]}" bench api examples/paper.yaml --repeat 1 -o results
echo "[main] hastack bench l3 examples/paper.yaml ${bench_args[*]} -o results  (the paper's Fig. 4b)" >&2
"${hastack[@]}" bench l3 examples/paper.yaml "${bench_args[@]}" -o results
cat results/REPORT.md
if [ "$openstack" -eq 1 ]; then
  echo "[main] hastack lab down; hastack lab up examples/paper.yaml --profile openstack" >&2
  "${hastack[@]}" lab down
  "${hastack[@]}" lab up examples/paper.yaml --profile openstack
  echo "[main] hastack bench l3 --profile openstack --repeat 3 -o results/openstack  (real Neutron)" >&2
  "${hastack[@]}" bench l3 examples/paper.yaml --profile openstack --repeat 3 -o results/openstack
  cat results/openstack/REPORT.md
fi
echo "[main] done: results/ holds the analyses, the rendered configuration, api/l3 JSON and plots, REPORT.md" >&2
