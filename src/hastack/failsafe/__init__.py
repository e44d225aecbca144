"""Failsafe: node agents keep their open gates while etcd is lost, if every controller confirms
(DESIGN-fencing.md, "Surviving the loss of etcd"). `protocol` is the signed wire format (pure); `peers`
is the node agent's round."""
