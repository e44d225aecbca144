"""Facts of the fencing protocol (docs/DESIGN-fencing.md) that both the controller and the node agent use."""

from __future__ import annotations

# Under the anchor policies (`paper`, `neutron`) nothing is fenced: a node agent holds its gates open this
# long, refreshed every heartbeat. After a switch back to `hastack`, a node that has not taken a lease
# since may still forward that long: the controller moves nothing away from it sooner.
ANCHOR_OPEN_S = 3600.0
