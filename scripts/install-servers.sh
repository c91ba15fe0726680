#!/usr/bin/env bash
# Installs the database servers the tests start for themselves (PostgreSQL, MariaDB), and
# Graphviz (`dot`, which `fsm-actors graph --format svg|png` runs and its tests parse DOT with).
# Idempotent: installs a package only when its server binary is missing. Starts no service
# (the tests run their own servers as an unprivileged user on 127.0.0.1).
# Needs root (or sudo) and Debian's apt-get.
set -euo pipefail

missing=()
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  missing+=(postgresql)
fi
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  missing+=(mariadb-server)
fi
if ! command -v dot >/dev/null 2>&1; then
  missing+=(graphviz)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-servers: PostgreSQL, MariaDB and Graphviz are already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install-servers: installing ${missing[*]}"
# A policy-rc.d that answers 101 keeps the packages from starting their services.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "install-servers: done"
