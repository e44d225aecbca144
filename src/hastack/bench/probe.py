"""Load probes that run inside a lab host and print one JSON sample per operation on stdout.

    python -m hastack.bench.probe keystone --url http://VIP:5000/v3 --seconds 8
    python -m hastack.bench.probe sql --host VIP --run RUN --seconds 10
    python -m hastack.bench.probe amqp --hosts db1,db2,db3 --queue Q --count 500
    python -m hastack.bench.probe drain --hosts db1,db2,db3 --queue Q

The password of keystone, sql, amqp and drain is read from HASTACK_PROBE_PASSWORD: an argument would be
readable by every user of the machine.
    python -m hastack.bench.probe sweep --targets A,B,C --seconds 60 --interval 0.2   (bench/sweep.py)

Every loop is bounded in count and time and stops by itself. A sample is {"t": wall clock, "ok": bool,
"ms": latency, ...}; what counts as acknowledged is only what the server confirmed (HTTP 200, a committed
INSERT, a publisher confirm).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pika
import pymysql

from hastack.bench import sweep

PASSWORD_ENV = "HASTACK_PROBE_PASSWORD"


def emit(**sample: Any) -> None:
    print(json.dumps(sample), flush=True)


def rows(out: str) -> list[dict[str, Any]]:
    """The samples a probe printed, one JSON object a line; a line cut short as it stopped is skipped."""
    found = []
    for line in out.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def timed(op: Callable[[], dict[str, Any]]) -> None:
    start = time.time()
    t0 = time.monotonic()
    try:
        extra = op()
        emit(t=start, ok=True, ms=round((time.monotonic() - t0) * 1000, 2), **extra)
    except Exception as e:
        emit(
            t=start,
            ok=False,
            ms=round((time.monotonic() - t0) * 1000, 2),
            error=f"{type(e).__name__}: {e}"[:200],
        )


def paced(seconds: float, interval: float, op: Callable[[], None]) -> None:
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        op()
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def keystone_token(url: str, password: str, timeout: float) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}},
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    req = urllib.request.Request(
        f"{url}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return str(resp.headers["X-Subject-Token"])


def run_keystone(a: argparse.Namespace) -> None:
    token = keystone_token(a.url, a.password, a.timeout)

    def list_users() -> dict[str, Any]:
        req = urllib.request.Request(f"{a.url}/users", headers={"X-Auth-Token": token})
        with urllib.request.urlopen(req, timeout=a.timeout) as resp:
            resp.read()
            return {"status": resp.status}

    paced(a.seconds, a.interval, lambda: timed(list_users))


class SqlWriter:
    """INSERT one row per tick with autocommit; a sample is ok only once the commit returned."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.conn: pymysql.connections.Connection[Any] | None = None
        self.seq = 0

    def _connection(self) -> pymysql.connections.Connection[Any]:
        if self.conn is None:
            a = self.a
            self.conn = pymysql.connect(
                host=a.host,
                user="hastack",
                password=a.password,
                database="hastack",
                autocommit=True,
                connect_timeout=2,
                read_timeout=5,
                write_timeout=5,
            )
            with self.conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS probe_writes (run VARCHAR(64) NOT NULL, "
                    "seq INT NOT NULL, t DOUBLE NOT NULL, PRIMARY KEY (run, seq))"
                )
        return self.conn

    def insert(self) -> dict[str, Any]:
        self.seq += 1
        try:
            with self._connection().cursor() as cur:
                cur.execute(
                    "INSERT INTO probe_writes (run, seq, t) VALUES (%s, %s, %s)",
                    (self.a.run, self.seq, time.time()),
                )
        except Exception:
            self.conn = None  # reconnect on the next tick, through the VIP
            raise
        return {"seq": self.seq}


def run_sql(a: argparse.Namespace) -> None:
    writer = SqlWriter(a)
    paced(a.seconds, a.interval, lambda: timed(writer.insert))


def _amqp_connect(a: argparse.Namespace) -> tuple[Any, Any]:
    params = [
        pika.ConnectionParameters(
            host=h,
            virtual_host="openstack",
            socket_timeout=2,
            blocked_connection_timeout=5,
            connection_attempts=1,
            credentials=pika.PlainCredentials("hastack", a.password),
        )
        for h in a.hosts.split(",")
    ]
    conn = pika.BlockingConnection(params)
    channel = conn.channel()
    channel.queue_declare(a.queue, durable=True, arguments={"x-queue-type": "quorum"})
    return conn, channel


class Publisher:
    """Persistent messages with publisher confirms; ok means the broker confirmed the message."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.channel: Any = None

    def publish(self, seq: int) -> dict[str, Any]:
        if self.channel is None:
            _conn, self.channel = _amqp_connect(self.a)
            self.channel.confirm_delivery()
        try:
            self.channel.basic_publish(
                "",
                self.a.queue,
                str(seq).encode(),
                pika.BasicProperties(delivery_mode=2, message_id=str(seq)),
                mandatory=True,
            )
        except Exception:
            self.channel = None  # reconnect to the next node of the list
            raise
        return {"seq": seq}


def run_amqp(a: argparse.Namespace) -> None:
    publisher = Publisher(a)
    deadline = time.monotonic() + a.seconds
    for seq in range(1, a.count + 1):
        if time.monotonic() > deadline:
            break
        timed(functools.partial(publisher.publish, seq))
        time.sleep(a.interval)


def run_drain(a: argparse.Namespace) -> None:
    """Consume every message of the queue (bounded by time) and print the ids received."""
    conn, channel = _amqp_connect(a)
    deadline = time.monotonic() + a.seconds
    received = []
    while time.monotonic() < deadline:
        method, _props, body = channel.basic_get(a.queue, auto_ack=True)
        if method is None:
            break
        received.append(int(body))
    conn.close()
    emit(t=time.time(), ok=True, ms=0, received=received)


def run_sweep(a: argparse.Namespace) -> None:
    sweep.sweep(a.targets.split(","), a.seconds, a.interval)


def run_ping(a: argparse.Namespace) -> None:
    """The real ping every `interval`: a sample per echo request, answered or not (-O), timestamped (-D).

    Bounded by a timer of its own, not by ping's -w: with -w, ping exits at the first "Destination Host
    Unreachable", and without it ping slows down while the target is unreachable, past any count."""
    count = max(1, int(a.seconds / a.interval))
    argv = ["ping", "-n", "-D", "-O", "-i", f"{a.interval:g}", "-W", "1", "-c", str(count), a.target]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        stop = threading.Timer(a.seconds + 1, proc.terminate)
        stop.start()
        # Stopped early by the experiment (SIGTERM): ping too, and what it printed is still read.
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                sample = parse_ping_line(line)
                if sample is not None:
                    emit(**sample)
        finally:
            stop.cancel()


PING_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+).* time=([\d.]+) ms")
PING_LOST = re.compile(r"^\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)")


def parse_ping_line(line: str) -> dict[str, Any] | None:
    """One sample from a line of `ping -D -O`: a reply, a request with no answer, or None for other lines."""
    reply = PING_REPLY.match(line)
    if reply:
        return {"t": float(reply[1]), "ok": True, "ms": float(reply[3]), "seq": int(reply[2])}
    lost = PING_LOST.match(line)
    if lost:
        return {"t": float(lost[1]), "ok": False, "ms": None, "seq": int(lost[2])}
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hastack.bench.probe")
    sub = parser.add_subparsers(dest="kind", required=True)
    ks = sub.add_parser("keystone")
    ks.add_argument("--url", required=True)
    sq = sub.add_parser("sql")
    sq.add_argument("--host", required=True)
    sq.add_argument("--run", required=True)
    pg = sub.add_parser("ping")
    pg.add_argument("--target", required=True)
    sw = sub.add_parser("sweep")
    sw.add_argument("--targets", required=True, help="comma-separated IPv4 addresses")
    for name in ("amqp", "drain"):
        q = sub.add_parser(name)
        q.add_argument("--hosts", required=True)
        q.add_argument("--queue", required=True)
        q.add_argument("--count", type=int, default=1000)
    for p in sub.choices.values():
        p.add_argument("--seconds", type=float, default=10.0)
        p.add_argument("--interval", type=float, default=0.05)
        p.add_argument("--timeout", type=float, default=5.0)
    a = parser.parse_args(argv)
    a.password = os.environ.get(PASSWORD_ENV)
    if a.password is None and a.kind not in ("ping", "sweep"):
        parser.error(f"{a.kind} needs its password in the environment variable {PASSWORD_ENV}")
    if a.seconds > 3600:
        parser.error("--seconds is at most 3600: probes are bounded")
    runners = {
        "keystone": run_keystone,
        "sql": run_sql,
        "amqp": run_amqp,
        "drain": run_drain,
        "ping": run_ping,
        "sweep": run_sweep,
    }
    runners[a.kind](a)


if __name__ == "__main__":
    main()
