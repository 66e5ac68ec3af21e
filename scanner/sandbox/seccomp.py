"""A seccomp BPF program for bubblewrap's `--seccomp FD`, compiled with the system libseccomp (ctypes).

Default allow with a deny list: the scanner is plain Python, so the list names what a parser never needs
and what widens a kernel attack surface (namespaces, mounts, keyrings, BPF, ptrace, io_uring, module
loading) plus every socket family but AF_UNIX (network namespaces already isolate; this is a second wall).
Calls from a foreign architecture (x32, i386 on x86_64) kill the process (libseccomp's bad-arch default).
Returns None when libseccomp is not installed; the caller decides whether that is acceptable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE = 1
SCMP_CMP_MASKED_EQ = 7
CLONE_NEWUSER = 0x10000000

DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
)


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    )
    lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    return lib


def available() -> bool:
    return _library() is not None


def bpf_program() -> bytes | None:
    """The compiled filter (raw struct sock_filter array, what bwrap reads), or None without libseccomp."""
    lib = _library()
    if lib is None:
        return None
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        deny = _errno_action(errno.EPERM)
        for name in DENIED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not on this architecture or kernel headers: nothing to deny
                continue
            _add(lib, ctx, deny, number, ())
        # glibc falls back from clone3 to clone on ENOSYS; clone's flags can be inspected, clone3's cannot.
        _add(lib, ctx, _errno_action(errno.ENOSYS), lib.seccomp_syscall_resolve_name(b"clone3"), ())
        _add(lib, ctx, deny, lib.seccomp_syscall_resolve_name(b"clone"), ((0, SCMP_CMP_MASKED_EQ, CLONE_NEWUSER),))
        _add(lib, ctx, deny, lib.seccomp_syscall_resolve_name(b"socket"), ((0, SCMP_CMP_NE, socket.AF_UNIX),))
        fd = os.memfd_create("acrguard-seccomp", os.MFD_CLOEXEC)
        try:
            if lib.seccomp_export_bpf(ctx, fd) != 0:
                raise OSError("seccomp_export_bpf failed")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _add(lib: ctypes.CDLL, ctx: int, action: int, number: int, args: tuple[tuple[int, int, int], ...]) -> None:
    if number < 0:
        return
    array = (_ArgCmp * max(len(args), 1))(*[_ArgCmp(arg, op, datum, datum) for arg, op, datum in args])
    if lib.seccomp_rule_add_array(ctx, action, number, len(args), array) != 0:
        raise OSError(f"seccomp_rule_add for syscall {number} failed")
