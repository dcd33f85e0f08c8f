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
	[post-exploitation]="nginx-light netcat-openbsd busybox-static"
)
scen=("$@")
[ ${#scen[@]} -gt 0 ] || scen=(ftp-bruteforce nginx-alias-traversal redis-config-write flask-ssti post-exploitation)
want=(${PKGS[common]})
for s in "${scen[@]}"; do
	[ -n "${PKGS[$s]+x}" ] || die "unknown scenario $s"
	want+=(${PKGS[$s]})
done
"$(dirname "${BASH_SOURCE[0]}")/../scripts/apt-install.sh" "${want[@]}"
