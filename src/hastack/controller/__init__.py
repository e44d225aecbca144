"""The HA controller: leader-elected, it moves routers off failed network nodes (issue 5, in progress)."""
