"""Every error fedlab raises, each with a message a student can act on."""

from __future__ import annotations


class FedlabError(Exception):
    """The base class of every fedlab error."""


class TensorsNotCollocatedException(FedlabError):
    """An operation mixed tensors that live in different places."""


class ObjectNotFoundError(FedlabError, KeyError):
    """A worker was asked for an object it does not hold."""

    def __str__(self) -> str:
        # KeyError would quote the message; students should read plain prose.
        return str(self.args[0]) if self.args else ""


class OperationNotAllowedError(FedlabError):
    """A worker refused an operation that is not on its allowlist."""


class RemoteValueError(FedlabError):
    """A value that lives on another worker was needed here (e.g. ``.item()`` on a pointer)."""


class SerdeError(FedlabError):
    """Bytes that are not a well-formed fedlab message, or an object fedlab cannot send."""


class WorkerNotFoundError(FedlabError):
    """A worker id that no known worker has."""


class PointerChainError(FedlabError):
    """A pointer-chain operation (``remote_get``, ``move``) used on the wrong kind of pointer."""


class StatefulOptimizerError(FedlabError):
    """An optimizer's state lives on another worker than the parameters it updates."""


class WorkerDiedError(FedlabError):
    """A worker process stopped answering."""


class PlanError(FedlabError, RuntimeError):
    """A plan could not be built from its function, or was called with the wrong inputs.

    (A ``RuntimeError`` too, as PySyft raised for a plan sent before it was built.)"""


class NotYoursError(FedlabError):
    """A worker was asked to act on an object that the asking worker holds no pointer to."""


class LimitError(FedlabError):
    """An operation would make a result bigger, or take longer, than the worker allows."""


class RemoteError(FedlabError):
    """An operation failed on the worker that ran it (the original error is in the message)."""


# Remote torch errors keep their builtin type (RuntimeError, ...) so that code written
# for local tensors catches them as it would locally, and they are still FedlabErrors.
# One class per builtin, made here: a peer naming other kinds cannot grow this table.
_REMOTE: dict[str, type[RemoteError]] = {
    b.__name__: type(f"Remote{b.__name__}", (RemoteError, b), {"__module__": __name__})
    for b in (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError, KeyError)
}

# The fedlab errors that travel from a worker back to the caller under their own name.
TRAVELLING: dict[str, type[FedlabError]] = {
    cls.__name__: cls
    for cls in (
        TensorsNotCollocatedException,
        ObjectNotFoundError,
        OperationNotAllowedError,
        RemoteValueError,
        SerdeError,
        WorkerNotFoundError,
        PointerChainError,
        StatefulOptimizerError,
        WorkerDiedError,
        PlanError,
        NotYoursError,
        LimitError,
    )
}


def kind_of(error: BaseException) -> str:
    """The name an error travels under: a torch error, even relayed, keeps its builtin's."""
    if isinstance(error, FedlabError) and not isinstance(error, RemoteError):
        return type(error).__name__
    builtins = (c.__name__ for c in type(error).__mro__ if c.__module__ == "builtins")
    return next((n for n in builtins if n in _REMOTE), "RemoteError")


def rebuild(kind: str, message: str) -> FedlabError:
    """Turn an error reply (its kind and message) back into an exception object."""
    cls = TRAVELLING.get(kind) or _REMOTE.get(kind) or RemoteError
    return cls(message)
