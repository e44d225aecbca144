"""Grants from a majority of controllers: sub-second liveness of network nodes (DESIGN-fencing.md, "Next
step: grants from a majority of controllers"). Pure: the rounds a node agent counts, the grants and
promises a controller gives, and the datagrams that carry them."""
