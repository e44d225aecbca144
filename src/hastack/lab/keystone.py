"""Keystone in the lab: the real service from PyPI, one uwsgi per controller, behind the VIP.

Once, from the first controller: the schema (`db_sync`, through the VIP like every client), the fernet and
credential keys (then copied to every replica: tokens must validate on any of them), and `bootstrap`.
Each replica serves `keystone.wsgi.api:application` (there is no keystone-wsgi-public script) from the
OpenStack virtual environment that scripts/setup.sh builds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hastack.lab import runtime, system
from hastack.lab.plan import LAB_ROOT, LabPlan
from hastack.lab.state import LabState
from hastack.lab.system import in_netns, run
from hastack.model.endpoints import keystone_url

OPENSTACK_VENV = Path(
    os.environ.get("HASTACK_OPENSTACK_VENV", Path(__file__).resolve().parents[3] / ".venv-openstack")
)
START_TIMEOUT = 60.0


def openstack_bin(name: str) -> str:
    path = OPENSTACK_VENV / "bin" / name
    if not path.exists():
        raise system.LabError(f"{path} is missing: run scripts/setup.sh (it builds {OPENSTACK_VENV})")
    return str(path)


def config_dir(host: str) -> Path:
    return Path(LAB_ROOT) / host / "etc" / "keystone"


def manage(lab: LabPlan, host: str, *args: str, env: dict[str, str] | None = None) -> str:
    conf = str(config_dir(host) / "keystone.conf")
    argv = [openstack_bin("keystone-manage"), "--config-file", conf, *args]
    return run(in_netns(lab.host(host).netns, argv), timeout=180, env=env).stdout


def uwsgi_argv(address: str, module: str) -> tuple[str, ...]:
    """A WSGI application of the OpenStack virtual environment (`module:application`) served by uwsgi on
    `address` (host:port): one worker of 4 threads, as the lab's services run."""
    return (
        openstack_bin("uwsgi"),
        "--http-socket",
        address,
        "--module",
        module,
        "--virtualenv",
        str(OPENSTACK_VENV),
        "--master",
        "--processes",
        "1",
        "--threads",
        "4",
        "--die-on-term",
        "--need-app",
        "--buffer-size",
        "65535",
        "--disable-logging",
    )


def ensure(lab: LabPlan, state: LabState, progress: system.Progress) -> None:
    dep = lab.deployment
    hosts = dep.hosts_of("keystone")
    if not hosts:
        return
    first = hosts[0]
    if all(runtime.running(state, "keystone", h) for h in hosts):
        return
    marker = Path(LAB_ROOT) / "keystone.bootstrapped"
    if not marker.exists():
        _bootstrap(lab, first, hosts, progress)
        marker.touch()
    for host in hosts:
        if runtime.running(state, "keystone", host) is None:
            progress(f"keystone: starting uwsgi on {host}")
            start(lab, state, host)
    for host in hosts:
        _wait_answers(lab, host, f"http://{lab.host(host).address}:{dep.port('keystone')}/v3")
    _wait_answers(lab, first, keystone_url(dep))


def start(lab: LabPlan, state: LabState, host: str) -> None:
    """The replica on `host`, once bootstrapped; waits for nothing."""
    env = {"OS_KEYSTONE_CONFIG_DIR": str(config_dir(host))}
    addr = f"{lab.host(host).address}:{lab.deployment.port('keystone')}"
    runtime.launch(lab, state, "keystone", host, uwsgi_argv(addr, "keystone.wsgi.api:application"), env)


def _bootstrap(lab: LabPlan, first: str, hosts: tuple[str, ...], progress: system.Progress) -> None:
    """Once per lab: the schema, the keys (the same on every replica), the admin user and endpoints."""
    dep = lab.deployment
    progress(f"keystone: database schema, keys and bootstrap from {first}")
    manage(lab, first, "db_sync")
    for repo, setup in (("fernet-keys", "fernet_setup"), ("credential-keys", "credential_setup")):
        if not (config_dir(first) / repo / "0").exists():
            manage(lab, first, setup, "--keystone-user", "root", "--keystone-group", "root")
        for other in hosts[1:]:
            shutil.copytree(config_dir(first) / repo, config_dir(other) / repo, dirs_exist_ok=True)
    url = keystone_url(dep)
    manage(
        lab,
        first,
        "bootstrap",
        "--bootstrap-admin-url",
        url,
        "--bootstrap-internal-url",
        url,
        "--bootstrap-public-url",
        url,
        "--bootstrap-region-id",
        "RegionOne",
        env={"OS_BOOTSTRAP_PASSWORD": dep.inventory.secrets.keystone_admin_password},
    )


def _wait_answers(lab: LabPlan, from_host: str, url: str) -> None:
    system.poll(
        f"Keystone at {url}", lambda: system.http_ok(lab.host(from_host).netns, url, 2), START_TIMEOUT, 0.3
    )


def openstack_cli(lab: LabPlan, host: str, *args: str) -> str:
    """The real `openstack` client, as admin, through the identity endpoint (the VIP)."""
    dep = lab.deployment
    argv = [
        openstack_bin("openstack"),
        "--os-auth-url",
        keystone_url(dep),
        "--os-username",
        "admin",
        "--os-project-name",
        "admin",
        "--os-user-domain-name",
        "Default",
        "--os-project-domain-name",
        "Default",
        "--os-identity-api-version",
        "3",
        *args,
    ]
    env = {"OS_PASSWORD": dep.inventory.secrets.keystone_admin_password}
    return run(in_netns(lab.host(host).netns, argv), timeout=60, env=env).stdout
