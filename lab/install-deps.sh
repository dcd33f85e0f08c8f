#!/usr/bin/env bash
# Installs the Debian packages the lab scenarios need (as root). Idempotent.
# usage: lab/install-deps.sh [SCENARIO...]   (default: all scenarios)
set -euo pipefail
die() { echo "lab: $*" >&2; exit 1; }
declare -A PKGS=(
	[common]="python3 curl util-linux iproute2"
	[ftp-bruteforce]="vsftpd hydra tini"
	[nginx-alias-traversal]="nginx-light"
	[redis-config-write]="redis-server redis-tools"
	[flask-ssti]="python3-flask"
	[post-exploitation]="nginx-light netcat-openbsd busybox"
)
scen=("$@")
[ ${#scen[@]} -gt 0 ] || scen=(ftp-bruteforce nginx-alias-traversal redis-config-write flask-ssti post-exploitation)
want=(${PKGS[common]})
for s in "${scen[@]}"; do
	[ -n "${PKGS[$s]+x}" ] || die "unknown scenario $s"
	want+=(${PKGS[$s]})
done
need=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
[ ${#need[@]} -eq 0 ] && { echo "lab: all packages present"; exit 0; }
[ "$(id -u)" = 0 ] || die "missing ${need[*]}; run as root to install them"
export DEBIAN_FRONTEND=noninteractive
# no init system here: keep the packages' daemons from being started
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "lab: installed ${need[*]}"
