#!/usr/bin/env bash
# Idempotent set-up for hastack on Debian 12 as root: the Debian packages of the real daemons and a
# virtual environment with hastack and its pinned dependencies. Safe to run any number of times; each
# step is skipped when it is already done. Sourced by scripts/main.sh and scripts/test.sh.
set -euo pipefail

HASTACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${HASTACK_VENV:-$HASTACK_ROOT/.venv}
# The real OpenStack services the lab runs (Keystone, Neutron, uwsgi, the openstack client) live apart from
# hastack's own environment: their dependency tree is large and pinned by requirements-openstack.lock.
OPENSTACK_VENV=${HASTACK_OPENSTACK_VENV:-$HASTACK_ROOT/.venv-openstack}
PYTHON=${PYTHON:-python3}

DEBIAN_PACKAGES=(
  haproxy keepalived mariadb-server galera-4 rabbitmq-server etcd-server etcd-client
  iproute2 iputils-ping nftables python3-nftables graphviz curl rsync procps
  openvswitch-switch iptables conntrack dnsmasq-base isc-dhcp-client
)

log() { printf '[setup] %s\n' "$*" >&2; }

missing_packages() {
  local pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
  done
}

install_debian_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if [ "${#missing[@]}" -eq 0 ]; then
    log "Debian packages present"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "error: missing Debian packages (${missing[*]}) and not root; run as root or install them"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  # The lab starts every daemon itself, inside its namespaces: keep the packages' postinst scripts from
  # starting system-wide copies. Only add a policy-rc.d if the machine has none, and remove only ours.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# added by hastack scripts/setup.sh during apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$ours" -eq 1 ] && rm -f "$policy"
  log "Debian packages installed"
}

ensure_python_venv_support() {
  if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    log "installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev >/dev/null
  fi
}

ensure_venv() {
  ensure_python_venv_support
  [ -x "$VENV/bin/python" ] || { log "creating virtual environment $VENV"; "$PYTHON" -m venv "$VENV"; }
  # Reinstall only when the dependency pins change: the stamp holds the hash of pyproject.toml.
  local stamp="$VENV/.hastack-pyproject.sha256" want
  want=$(sha256sum "$HASTACK_ROOT/pyproject.toml" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing hastack and its pinned dependencies into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e "$HASTACK_ROOT[dev]"
    echo "$want" >"$stamp"
  else
    log "virtual environment up to date"
  fi
  link_nftables_binding
}

link_nftables_binding() {
  # libnftables' Python binding ships with the library it drives (Debian's python3-nftables); a copy from
  # PyPI could drift from the installed library. Link just that package into the environment.
  local site
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  [ -e "$site/nftables" ] || ln -s /usr/lib/python3/dist-packages/nftables "$site/nftables"
}

ensure_openstack_venv() {
  [ -x "$OPENSTACK_VENV/bin/python" ] || { log "creating virtual environment $OPENSTACK_VENV"; "$PYTHON" -m venv "$OPENSTACK_VENV"; }
  local stamp="$OPENSTACK_VENV/.hastack-lock.sha256" want
  want=$(sha256sum "$HASTACK_ROOT/requirements-openstack.lock" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Keystone, Neutron, uwsgi and the openstack client into $OPENSTACK_VENV (a few minutes)"
    "$OPENSTACK_VENV/bin/pip" install -q --upgrade pip
    "$OPENSTACK_VENV/bin/pip" install -q -r "$HASTACK_ROOT/requirements-openstack.lock"
    echo "$want" >"$stamp"
  else
    log "OpenStack virtual environment up to date"
  fi
}

hastack_setup() {
  install_debian_packages
  ensure_venv
  ensure_openstack_venv
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  hastack_setup
fi
