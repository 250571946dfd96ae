"""What the Kubernetes API server does with our custom objects, offline: defaulting, pruning, validation.

The package splits the work as the API server does: `crds` reads the schemas, `structural` checks types and
bounds, `cel_rules` runs `x-kubernetes-validations`, `defaulting` fills defaults and prunes, and `validator`
puts them together per kind and version. The names below are the ones the rest of the operator imports.
"""

from incidentio_operator.offline.schema.crds import CRDS_ENV, crds_dir, load_crds
from incidentio_operator.offline.schema.problems import SchemaProblem
from incidentio_operator.offline.schema.validator import ObjectValidator, validator_for

__all__ = ["CRDS_ENV", "ObjectValidator", "SchemaProblem", "crds_dir", "load_crds", "validator_for"]
