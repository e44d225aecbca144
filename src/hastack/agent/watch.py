"""What the node agent watches and whom it tells: the L3 agent (pidfd) and its supervisor (sd_notify).

A pidfd becomes readable the moment its process exits, so the agent learns of the L3 agent's death in
milliseconds, without polling and without being fooled by a reused PID. sd_notify is the systemd protocol
(one datagram per message to $NOTIFY_SOCKET); the lab supervisor speaks it too. `news` keeps the daemons'
logs to changes of state.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from pathlib import Path


class ProcessWatch:
    """The process named by a pidfile, watched through a pidfd."""

    def __init__(self, pidfile: Path) -> None:
        self.pidfile = pidfile
        self.pid: int | None = None
        self._fd: int | None = None

    def attach(self) -> bool:
        """Open a pidfd on the process the pidfile names now; whether it is alive."""
        self.detach()
        try:
            pid = int(self.pidfile.read_text().split()[0])
            fd = os.pidfd_open(pid)
        except (OSError, ValueError, IndexError):
            return False
        if _exited(fd):
            os.close(fd)
            return False
        self.pid, self._fd = pid, fd
        return True

    def wait_exit(self, timeout_s: float) -> bool:
        """Block until the watched process exits (True) or `timeout_s` passes (False)."""
        if self._fd is None:
            return True
        return _exited(self._fd, timeout_s)

    def detach(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self.pid, self._fd = None, None


def _exited(fd: int, timeout_s: float = 0.0) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout_s * 1000)))


def sd_notify(message: str) -> bool:
    """Send `message` (e.g. "READY=1", "WATCHDOG=1") to the supervisor, if there is one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    # A supervisor that is restarting must not kill its daemon: errors are dropped.
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
        contextlib.suppress(OSError),
    ):
        # Never block: a supervisor that is busy must not stall its daemon. (A blocking send to a full
        # queue did, for a whole minute, while `lab heal` held the supervisor's lock: the gates ran out.)
        sock.sendto(message.encode(), socket.MSG_DONTWAIT, address)
        return True
    return False


def is_news(said: str, sentence: str) -> bool:
    """Whether a loop's sentence says something new, numbers aside: log changes of state, not every
    renewal's countdown."""
    return bool(sentence) and _shape(sentence) != _shape(said)


def _shape(sentence: str) -> str:
    return "".join(c for c in sentence if not c.isdigit())
