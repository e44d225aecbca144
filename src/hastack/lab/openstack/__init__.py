"""The lab's `openstack` profile: real Neutron (server and agents from PyPI), a private Open vSwitch and a
mount namespace per OpenStack host, and the tenant workload as Neutron resources."""
