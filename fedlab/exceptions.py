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


class PlanError(FedlabError):
    """A plan could not be built from its function, or was called with the wrong inputs."""


class RemoteError(FedlabError):
    """An operation failed on the worker that ran it (the original error is in the message)."""


# Remote torch errors keep their builtin type (RuntimeError, ...) so that code written
# for local tensors catches them as it would locally, and they are still FedlabErrors.
_REMOTE_BUILTINS = (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError)
_remote_classes: dict[str, type[RemoteError]] = {}


def remote_error_class(builtin_name: str) -> type[RemoteError]:
    """The RemoteError subclass that also derives from the named builtin exception."""
    cls = _remote_classes.get(builtin_name)
    if cls is None:
        base = next((b for b in _REMOTE_BUILTINS if b.__name__ == builtin_name), None)
        bases: tuple[type, ...] = (RemoteError,) if base is None else (RemoteError, base)
        cls = type(f"Remote{builtin_name}", bases, {"__module__": __name__})
        _remote_classes[builtin_name] = cls
    return cls


# The fedlab errors that travel from a worker back to the caller under their own name.
TRAVELLING = {
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
    )
}


def rebuild(kind: str, message: str) -> FedlabError:
    """Turn an error reply (class name and message) back into an exception object."""
    cls = TRAVELLING.get(kind)
    if cls is not None:
        return cls(message)
    return remote_error_class(kind)(message)
