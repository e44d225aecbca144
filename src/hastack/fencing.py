"""Facts of the fencing protocol (docs/DESIGN-fencing.md) that both the controller and the node agent use."""

from __future__ import annotations

# Under the anchor policies (`paper`, `neutron`) nothing is fenced: a node agent holds its gates open this
# long, refreshed every heartbeat. After a switch back to `hastack`, a node that has not taken a lease
# since may still forward that long: the controller moves nothing away from it sooner.
ANCHOR_OPEN_S = 3600.0

# The node agent and the controller run before the workloads get the CPU, as keepalived and corosync run at
# real-time priority for the same reason: with grants on, a node agent starved of the CPU for 300 ms misses
# its rounds and its routers move for nothing (seen on a 2-core lab building 2000 routers at load 40).
DAEMON_NICE = -10
