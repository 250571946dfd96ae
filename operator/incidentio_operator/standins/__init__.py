"""The two stand-ins for the outside systems: a Kubernetes API server and incident.io, both on loopback."""
