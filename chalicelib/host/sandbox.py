"""The sandbox that builds and apps run in on this machine: bubblewrap (`bwrap`).

A sandboxed command sees the system directories read-only, a private `/tmp`, a fresh
`/proc` of its own pid namespace, `/dev`'s basic nodes, and the directories it is given
(its working directory; an app's socket directory). Nothing else of the filesystem: not
Shipyard's state directory, not the checkout, not another deployment's files. It has its
own network namespace with only a loopback interface, so 127.0.0.1 inside is not the
machine's: the moto endpoint and Shipyard's ports cannot be reached. What it may reach goes
through Unix sockets bound into it (runtimes/local.py, builders/egress.py).

Inside, it runs as a user id of its own (`setpriv`, from util-linux), with no capabilities
and `no_new_privs`, and resource limits (setrlimit, inherited by every child): data memory
per process, open files, and processes of that user, which are only its own. A fork bomb or
an 8 GiB allocation fails inside the sandbox and nowhere else.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from chalicelib.core.settings import ROOT, get_settings, state_dir

SYSTEM_DIRS = ("/usr", "/etc", "/opt")
# Merged-/usr systems make these symlinks into /usr; elsewhere they are directories.
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
FIRST_SANDBOX_UID = 200_000
SANDBOX_UIDS = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    memory_mb: int  # data memory of each process (RLIMIT_DATA)
    open_files: int
    processes: int  # processes and threads of the sandbox's user

    def apply(self) -> None:
        """Set in the child before it executes the sandbox (Popen's preexec_fn)."""
        memory = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass(frozen=True)
class Mount:
    source: Path
    target: Path
    writable: bool = False


class Unsandboxed(Exception):
    """No sandbox here, and running untrusted code without one is not allowed."""


def state() -> str:
    """`on` when builds and apps run sandboxed, `off` when they run without (allowed)."""
    return "on" if missing() is None else "off"


def limits() -> Limits | None:
    """The limits a sandbox gets; None to run unsandboxed, which only
    SHIPYARD_ALLOW_UNSANDBOXED=1 allows (else Unsandboxed, saying why there is none)."""
    settings = get_settings()
    reason = missing()
    if reason is None:
        return Limits(
            settings.sandbox_memory_mb, settings.sandbox_open_files, settings.sandbox_processes
        )
    if settings.allow_unsandboxed:
        return None
    raise Unsandboxed(
        f"no sandbox for untrusted code: {reason}; "
        "set SHIPYARD_ALLOW_UNSANDBOXED=1 to run builds and apps without one"
    )


@cache
def missing() -> str | None:
    """Why no sandbox can be had here (None when it can): a tool that is not installed, or
    a bwrap that cannot make namespaces on this kernel."""
    for tool in ("bwrap", "setpriv", "socat"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: apt-get install bubblewrap socat)"
    probe = subprocess.run(
        wrap(["/bin/true"], [], uid=uid_for("probe")),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"bwrap cannot make a sandbox here: {probe.stderr.strip()[:300]}"
    return None


def uid_for(name: str) -> int:
    """The user id a sandbox runs as: one per deployment, so the process limit counts only
    its own processes, and no other sandbox's files are its own."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return FIRST_SANDBOX_UID + digest % SANDBOX_UIDS


def give_to(path: Path, uid: int) -> None:
    """Make a directory tree the sandbox's user's (its working directory)."""
    os.chown(path, uid, uid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def wrap(
    command: list[str],
    mounts: Iterable[Mount],
    uid: int,
    chdir: Path | None = None,
) -> list[str]:
    """The argv that runs `command` sandboxed, as `uid`, with `mounts` besides the system.
    Everything in it dies with the process that runs bwrap, and when the command ends
    (bwrap's own init would otherwise wait for what the command left behind). No system
    bind may expose the state directory or the checkout: a directory that holds one of
    them is left out."""
    hidden = [state_dir().resolve(), ROOT.resolve()]
    # Every namespace but the user one: the sandbox's user id must be the machine's, so
    # that its process limit counts its own processes and no one else's.
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--cap-add", "CAP_SETUID,CAP_SETGID"]
    made = {"/"}
    for directory in _system_dirs(hidden):
        argv += [*_parents(Path(directory), made), "--ro-bind", directory, directory]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link) and _exposable(Path(link), hidden):
            argv += ["--ro-bind", link, link]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--perms", "0755", "--tmpfs", "/run"]
    made.update(("/tmp", "/run"))
    for mount in mounts:
        argv += _parents(mount.target, made)
        argv += ["--bind" if mount.writable else "--ro-bind", str(mount.source), str(mount.target)]
    if chdir is not None:
        argv += ["--chdir", str(chdir)]
    # bwrap keeps CAP_SETUID/SETGID only for setpriv, which drops them with the user.
    argv += ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    argv += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *command]
    return argv


def search_path(path: str) -> str:
    """PATH as a sandbox should have it: pyenv's shims rewrite their own directory after a
    `pip install` (rehash), which a read-only system cannot allow, so the interpreter's own
    bin directory stands in for them."""
    own_bin = str(Path(getattr(sys, "_base_executable", sys.executable)).parent)
    parts = [
        own_bin if part.endswith("/shims") and "pyenv" in part else part for part in path.split(":")
    ]
    return ":".join(dict.fromkeys(part for part in parts if part))


def _parents(target: Path, made: set[str]) -> list[str]:
    """Directories a mount's target needs, made traversable (bwrap's own are 0700)."""
    argv = []
    for parent in reversed(target.parents):
        if str(parent) not in made:
            made.add(str(parent))
            argv += ["--perms", "0755", "--dir", str(parent)]
    return argv


def _system_dirs(hidden: list[Path]) -> list[str]:
    """The system directories, and the prefix of the interpreters Shipyard's tools run
    with when it lies outside them (pyenv's under $HOME, say)."""
    found = [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    extra = [sys.base_prefix, os.environ.get("PYENV_ROOT", "")]
    extra += [p for p in get_settings().sandbox_read_only.split(":") if p]
    for path in sorted((p for p in extra if p), key=len):
        if os.path.isdir(path) and not any(_inside(path, d) for d in found):
            found.append(os.path.realpath(path))
    return [d for d in found if _exposable(Path(d), hidden)]


def _inside(path: str, directory: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(directory).resolve())


def _exposable(directory: Path, hidden: list[Path]) -> bool:
    resolved = directory.resolve()
    return not any(
        secret.is_relative_to(resolved) or resolved.is_relative_to(secret) for secret in hidden
    )
