"""The HA controller: leader-elected, it moves routers off failed network nodes and fences their moves."""
