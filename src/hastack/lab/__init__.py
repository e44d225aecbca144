"""The lab: a deployment realised on one Linux machine, hosts as network namespaces running real daemons."""
