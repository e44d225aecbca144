"""The deployment's own certificate authority: a CA, a certificate per host and one for hastack's clients."""

from hastack.pki.issue import PkiError, ensure
from hastack.pki.layout import Layout

__all__ = ["Layout", "PkiError", "ensure"]
