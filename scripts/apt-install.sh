#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are not installed
# yet. Idempotent; needs root only when something is missing. Shared by
# scripts/install-test-deps.sh and lab/install-deps.sh.
# usage: scripts/apt-install.sh PACKAGE...
set -euo pipefail
need=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -gt 0 ] || exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install: missing ${need[*]} and not root; install them first" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# No init system here: keep the packages' daemons (nginx, redis, vsftpd)
# from being started by their install scripts.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "apt-install: installed ${need[*]}" >&2
