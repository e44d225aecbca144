"""A mount namespace of its own for each OpenStack host of the lab (profile `openstack`).

Neutron's agents name router namespaces after the router (`qrouter-<id>`), keep them under /run/netns and
talk to Open vSwitch through /run/openvswitch. Two network nodes on one machine would share both: an L3
agent starting up deletes the `qrouter-` namespaces it does not host, which are the other node's, and a
router moved between nodes would need the same name twice. So each such host gets a persistent mount
namespace (bound to a file under MOUNT_DIR) with private tmpfs on /run/netns and /run/openvswitch; its
daemons are started inside it and inside the host's network namespace.
"""

from __future__ import annotations

from pathlib import Path

from hastack.lab import procs, system
from hastack.lab.system import run

MOUNT_DIR = Path("/run/hastack-lab/mnt")
PRIVATE_DIRS = ("/run/netns", "/run/openvswitch")


def path(host: str) -> Path:
    return MOUNT_DIR / host


def _is_mountpoint(target: Path) -> bool:
    return run(["mountpoint", "-q", str(target)], check=False).returncode == 0


def exists(host: str) -> bool:
    return path(host).exists() and _is_mountpoint(path(host))


def ensure(host: str) -> None:
    """Make the host's mount namespace unless it exists. Its file must live on a private mount: the kernel
    refuses to bind a mount namespace onto a shared one (it would propagate into itself)."""
    if exists(host):
        return
    MOUNT_DIR.mkdir(parents=True, exist_ok=True)
    if not _is_mountpoint(MOUNT_DIR):
        run(["mount", "--bind", str(MOUNT_DIR), str(MOUNT_DIR)])
        run(["mount", "--make-private", str(MOUNT_DIR)])
    for d in PRIVATE_DIRS:
        Path(d).mkdir(parents=True, exist_ok=True)  # mount points only: nothing is written there
    path(host).touch()
    mounts = " && ".join(f"mount -t tmpfs -o mode=755 hastack-{host} {d}" for d in PRIVATE_DIRS)
    run(["unshare", f"--mount={path(host)}", "--propagation", "private", "--", "sh", "-c", mounts])
    system.poll(f"mount namespace of {host}", lambda: exists(host), timeout=5)


def wrap(host: str, netns: str, argv: list[str] | tuple[str, ...]) -> list[str]:
    """argv inside the host's mount namespace and network namespace."""
    return ["nsenter", f"--mount={path(host)}", f"--net=/run/netns/{netns}", "--", *argv]


def netns_inside(host: str) -> list[str]:
    """The network namespaces the host's daemons made (Neutron's qrouter-/qdhcp-), by name."""
    if not exists(host):
        return []
    out = run(["nsenter", f"--mount={path(host)}", "--", "ls", "/run/netns"], check=False).stdout
    return sorted(out.split())


def netns_pids(host: str, netns: str) -> list[int]:
    out = run(["nsenter", f"--mount={path(host)}", "--", "ip", "netns", "pids", netns], check=False).stdout
    return [int(pid) for pid in out.split()]


def delete_netns(host: str, netns: str) -> None:
    run(["nsenter", f"--mount={path(host)}", "--", "ip", "netns", "delete", netns], check=False)


def remove(host: str, say: system.Progress) -> None:
    """Remove what the host's daemons made inside (Neutron's namespaces and the processes in them, which
    only the lab's daemons can have started), then unbind the mount namespace. Safe to run twice."""
    for netns in netns_inside(host):
        for pid in netns_pids(host, netns):
            say(f"stopping leftover process {pid} ({procs.comm(pid)}) in {host}'s {netns}")
            procs.kill_leftover(pid)
        say(f"removing {host}'s namespace {netns}")
        delete_netns(host, netns)
    if exists(host):
        run(["umount", str(path(host))])
    path(host).unlink(missing_ok=True)
    if MOUNT_DIR.exists() and not any(MOUNT_DIR.iterdir()) and _is_mountpoint(MOUNT_DIR):
        run(["umount", str(MOUNT_DIR)])
