"""Grants from a majority of controllers: sub-second liveness of network nodes (DESIGN-fencing.md, "Grants
from a majority of controllers"). Pure: the rounds a node agent counts (rounds.py), the grants and promises
a controller gives (granter.py), the beats by which a majority takes the lead (beats.py), the datagrams
(wire.py). I/O: the UDP transport (udp.py) and the promise keys in the store (promises.py)."""
