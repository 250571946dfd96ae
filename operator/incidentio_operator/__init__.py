"""incidentio-operator: data-observability alerts in Kubernetes, turned into incident.io incidents."""

__version__ = "0.1.0"
