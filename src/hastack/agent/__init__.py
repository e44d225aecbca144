"""The node agent: the network node's lease, its kernel gate, and the cleanup of its routers."""
