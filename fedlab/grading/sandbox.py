"""Confine a grading kernel with Linux Landlock: it may write only in its own folder.

Applied by ``fedlab.grading.kernel`` before the kernel starts any thread (Landlock binds
the calling thread and whatever it starts later). Once applied, for good, the kernel
and every process it starts:

* write, create, rename and delete files only below its submission's temporary folder
  (and ``/dev/null``): other submissions, the installed fedlab and the grader's output
  files are out of reach;
* bind TCP ports only on its own Jupyter ports and connect only to the grader's server;
* cannot signal, trace (``ptrace``) or reach the abstract sockets of any process outside
  its sandbox: not the grader, not the server that holds the workers.

Reading is not restricted (the kernel needs Python, torch and fedlab). Needs Linux 6.7
or newer for the network rules and 6.12 for signals; ``available()`` gives the ABI.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

_SYS_CREATE, _SYS_ADD, _SYS_RESTRICT = 444, 445, 446  # x86_64 and aarch64 alike
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_VERSION = 1
_RULE_PATH, _RULE_PORT = 1, 2

# Filesystem rights Landlock handles (all but reading and executing are denied outside).
_FS_WRITE = [1 << 1] + [1 << b for b in range(4, 13)]  # write, remove, make...
_FS_BY_ABI = {2: 1 << 13, 3: 1 << 14, 5: 1 << 15}  # refer, truncate, ioctl on devices
_BIND, _CONNECT = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_O_PATH = getattr(os, "O_PATH", 0o10000000)


class _Ruleset(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def available() -> int:
    """The Landlock ABI version of this kernel (0: none, or not Linux)."""
    try:
        abi = _libc().syscall(_SYS_CREATE, None, ctypes.c_size_t(0), _CREATE_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(abi, 0)


class SandboxError(OSError):
    """The sandbox could not be applied."""


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise SandboxError(err, f"landlock: {what} failed: {os.strerror(err)}")
    return result


def confine(writable: Iterable[str], bind_ports: Iterable[int] = (),
            connect_ports: Iterable[int] = ()) -> int:  # fmt: skip
    """Confine this thread (and what it starts) as the module says; returns the ABI used."""
    abi = available()
    if abi < 1:
        raise SandboxError(0, "landlock is not available on this system")
    libc = _libc()
    fs = sum(_FS_WRITE) + sum(bit for need, bit in _FS_BY_ABI.items() if abi >= need)
    net = (_BIND | _CONNECT) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = _Ruleset(fs, net, scoped)
    size = ctypes.sizeof(_Ruleset) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _check(libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), 0),
                     "create_ruleset")  # fmt: skip
    try:
        for path in writable:
            fd = os.open(path, _O_PATH | os.O_CLOEXEC)
            try:
                rights = fs if os.path.isdir(path) else (1 << 1) | _FS_BY_ABI.get(3, 0) * (abi >= 3)
                rule = _PathBeneath(rights, fd)
                _check(libc.syscall(_SYS_ADD, ruleset, _RULE_PATH, ctypes.byref(rule), 0),
                       f"allow writing in {path}")  # fmt: skip
            finally:
                os.close(fd)
        if net:
            for port, right in [(p, _BIND) for p in bind_ports] + [
                (p, _CONNECT) for p in connect_ports
            ]:
                rule = _NetPort(right, int(port))
                _check(libc.syscall(_SYS_ADD, ruleset, _RULE_PORT, ctypes.byref(rule), 0),
                       f"allow port {port}")  # fmt: skip
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.syscall(_SYS_RESTRICT, ruleset, 0), "restrict_self")
    finally:
        os.close(ruleset)
    return abi
