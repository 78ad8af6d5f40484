"""The errors of the secure layer, each with a message a student can act on."""

from __future__ import annotations

from fedlab.exceptions import FedlabError


class SecureError(FedlabError, TypeError):
    """A fixed-precision or shared tensor was used in a way the secure layer refuses.

    It is also a ``TypeError``: code written for torch catches it where torch would
    complain about a wrong kind of argument.
    """


class PartyError(FedlabError):
    """A party of a shared computation could not be reached; nothing was changed."""
