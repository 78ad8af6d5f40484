"""The errors of the secure layer, each with a message a student can act on."""

from __future__ import annotations

from fedlab.exceptions import FedlabError


class SecureError(FedlabError):
    """A fixed-precision or shared tensor was used in a way the secure layer refuses.

    (Not a ``TypeError``: torch turns a ``TypeError`` raised by an operator such as ``+``
    into "unsupported operand", which would hide the explanation.)
    """
