# lab/lib.sh -- shared machinery of the lab scenarios (sourced by */run.sh).
#
# A scenario's run.sh sets SCENARIO, PORT, SERVER_CMD (array) and defines
#   lab_setup         once: write configs/site under $SRV, create users ...
#   lab_prepare       before each recording: reset server state (optional)
#   lab_normal_load   the bounded client workload; runs from "server ready"
#                     until the recorder exits (loop bounds: $LOAD_MAX
#                     iterations and the deadline $REC_END, epoch seconds)
#   lab_attack        the attack (every command bounded by `timeout`)
#   lab_housekeeping  (optional) prints a POSIX sh snippet: one round of the
#                     container's own periodic job (log rotation, cleanup,
#                     DNS lookups, package-cache reads ...); record_one runs
#                     it inside the sandbox every HOUSEKEEPING_EVERY seconds
#                     in every recording, normal and attack alike
#   lab_cleanup       on exit (optional)
# then calls `lab_main`.
#
# Knobs (environment):
#   OUT           output root (default lab/out); the scenario goes to OUT/<scenario>
#   SMALL=1       CI size: 2 training, 1 validation, 1 normal, 1 attack, 6 s
#   N_TRAIN N_VAL N_NORMAL N_ATTACK DURATION (seconds)   override the sizes
#   SEED          seeds the attack times (default 1)
#   CHIDS_RECORD  the record command (default "target/release/chids record",
#                 built with `cargo build --release --features live`)
#   PORT          the server's port on 127.0.0.1 (each scenario has its own default)
#   LAB_SRV       where servers' files go (default /srv/chids-lab/<scenario>)
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB/.." && pwd)

log() { printf '[lab %s] %s\n' "${SCENARIO:-?}" "$*" >&2; }
die() {
	echo "lab: ${SCENARIO:+$SCENARIO: }$*" >&2
	exit 1
}
now() { date +%s.%N; }
# float arithmetic without bc
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }

if [ -n "${SMALL:-}" ] && [ "${SMALL}" != 0 ]; then
	: "${N_TRAIN:=2}" "${N_VAL:=1}" "${N_NORMAL:=1}" "${N_ATTACK:=1}" "${DURATION:=6}"
else
	: "${N_TRAIN:=6}" "${N_VAL:=4}" "${N_NORMAL:=10}" "${N_ATTACK:=4}" "${DURATION:=10}"
fi
HOUSEKEEPING_EVERY=${HOUSEKEEPING_EVERY:-2}
SEED=${SEED:-1}
OUT=${OUT:-$LAB/out}
# The server's files (configs, site, home folders) live at a fixed path, so
# paths in the recordings are the same in every run; LAB_SRV moves them.
SRV=${LAB_SRV:-/srv/chids-lab}/${SCENARIO:-none}
CHIDS_RECORD="${CHIDS_RECORD:-$REPO/target/release/chids record}"
read -ra RECORD_CMD <<<"$CHIDS_RECORD"
# The sandboxed server gets a clean, fixed environment (no pyenv shims,
# no caller variables): recordings must not depend on who ran the lab.
SANDBOX_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PY=/usr/bin/python3
REC_PID=""
LOAD_PID=""
JOB_PID=""
WORK=""

lab_check_common() {
	[ "$(id -u)" = 0 ] || die "must run as root (eBPF capture, cgroups, namespaces)"
	[ -n "${SCENARIO:-}" ] || die "SCENARIO not set"
	for n in N_TRAIN N_VAL N_NORMAL N_ATTACK DURATION SEED; do
		[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number (got '${!n}')"
	done
	[ "$DURATION" -ge 4 ] && [ "$DURATION" -le 600 ] || die "DURATION must be 4..600 seconds"
	local rec=${RECORD_CMD[0]:-}
	[ -n "$rec" ] || die "CHIDS_RECORD is empty"
	[ -x "$rec" ] || command -v "$rec" >/dev/null ||
		die "record binary '$rec' not found: build it with 'cargo build --release --features live' or set CHIDS_RECORD"
	[ -x "$PY" ] || die "missing $PY (apt-get install python3)"
	for t in timeout nsenter awk; do command -v "$t" >/dev/null || die "missing tool: $t"; done
	if port_open "$PORT"; then die "port $PORT is already in use on 127.0.0.1 (another server running?)"; fi
}

# need TOOL... : fail with the package hint when a tool is missing
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || [ -x "$t" ] ||
			die "missing $t; run lab/install-deps.sh (as root)"
	done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS: until something listens, the recorder is alive
wait_port() {
	local port=$1 limit=$2 i
	for ((i = 0; i < limit * 10; i++)); do
		port_open "$port" && return 0
		[ -n "$REC_PID" ] && ! kill -0 "$REC_PID" 2>/dev/null && return 1
		sleep 0.1
	done
	return 1
}

cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts
}

# The recorder's sandbox: its cgroup (record names it
# <cgroup2 root>/chids/record-<cmd>-<n>-<recorder pid>) and the pid (in the host
# namespace) of the sandbox's pid 1, the server.
sandbox_cgroup() {
	local root d
	root=$(cgroup2_root)
	for d in "$root"/chids/record-*-"$REC_PID"; do
		[ -d "$d" ] && { echo "$d"; return 0; }
	done
	return 1
}
sandbox_pid1() {
	local cg=$1 p
	while read -r p; do
		# NSpid: <host pid> <pid in the sandbox>; the server is 1 there
		if awk '/^NSpid:/ { exit !(NF == 3 && $3 == 1) }' "/proc/$p/status" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done <"$cg/cgroup.procs"
	return 1
}

# in_sandbox CMD...: run CMD "inside the container": in the sandbox's cgroup
# and its mount/pid/uts/ipc namespaces, with the sandbox's environment.
in_sandbox() {
	local cg pid1 nsenter
	cg=$(sandbox_cgroup) || die "cannot find the sandbox's cgroup (recorder pid $REC_PID)"
	pid1=$(sandbox_pid1 "$cg") || die "cannot find the sandbox's pid 1 in $cg"
	nsenter=$(command -v nsenter)
	(
		for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
		export PATH="$SANDBOX_PATH" HOME=/root LANG=C.UTF-8
		echo "$BASHPID" >"$cg/cgroup.procs"
		exec "$nsenter" -t "$pid1" -m -p -u -i "$@"
	)
}

# in_sandbox_bounded SECS CMD...: in_sandbox, killed after SECS seconds
in_sandbox_bounded() {
	local secs=$1 i pid
	shift
	in_sandbox "$@" &
	pid=$!
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# A fraction in [0.30, 0.60] of the recording, from bash's seeded RANDOM.
attack_fraction() {
	local r=$((RANDOM % 3001))
	calc "0.30 + $r / 10000"
}

lab_on_exit() {
	set +e
	[ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
	[ -n "$JOB_PID" ] && kill "$JOB_PID" 2>/dev/null
	if [ -n "$REC_PID" ] && kill -0 "$REC_PID" 2>/dev/null; then
		kill -TERM "$REC_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$REC_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$REC_PID" 2>/dev/null
	fi
	declare -F lab_cleanup >/dev/null && lab_cleanup
	[ -n "$WORK" ] && rm -rf "$WORK"
}

# start_housekeeping NAME: the scenario's periodic job, inside the sandbox
# (one process started once, as a container's own cron would be), until
# the recording ends.
start_housekeeping() {
	declare -F lab_housekeeping >/dev/null || return 0
	local round secs
	round=$(lab_housekeeping)
	secs=$(awk "BEGIN { print int($REC_END - $(now)) + 1 }")
	in_sandbox_bounded "$secs" /bin/sh -c "
		end=\$(( \$(date +%s) + $secs )); i=0
		while [ \$(date +%s) -lt \$end ]; do
			i=\$((i + 1))
			$round
			sleep $HOUSEKEEPING_EVERY
		done" >"$WORK/housekeeping-$1.log" 2>&1 &
	JOB_PID=$!
}

# One round of the usual housekeeping of a Debian server, as POSIX sh (`$i`
# is the round): resolve names (nsswitch, hosts, resolv.conf), read the
# package database, write and remove a job file named by a random hash in
# /tmp, and every second round rotate the logs with ROTATE.
# usage: common_housekeeping PACKAGE ROTATE
common_housekeeping() {
	local pkg=$1 rotate=$2
	cat <<EOF
getent hosts localhost >/dev/null
timeout 1 getent hosts chids-lab-db >/dev/null || true
dpkg-query -W -f='\${Version}' $pkg >/dev/null 2>&1 || true
f=/tmp/job-\$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
date >"\$f"; cat "\$f" >/dev/null; rm -f "\$f"
if [ \$((i % 2)) -eq 0 ]; then $rotate; fi
EOF
}

# record_one DIR NAME ATTACK(0|1)
record_one() {
	local dir=$1 name=$2 attack=$3
	local zip=$dir/$name.zip marker=$WORK/marker-$name reclog=$WORK/rec-$name.log
	rm -f "$zip" "$marker"
	declare -F lab_prepare >/dev/null && lab_prepare
	local extra=()
	[ "$attack" = 1 ] && extra=(--marker-file "$marker")
	local t0
	t0=$(now)
	REC_END=$(calc "$t0 + $DURATION")
	env -i PATH="$SANDBOX_PATH" HOME=/root LANG=C.UTF-8 \
		"${RECORD_CMD[@]}" --out "$zip" --duration "${DURATION}s" "${extra[@]}" -- "${SERVER_CMD[@]}" \
		>"$reclog" 2>&1 &
	REC_PID=$!
	if ! wait_port "$PORT" 15; then
		cat "$reclog" >&2
		die "$name: server did not listen on 127.0.0.1:$PORT within 15 s"
	fi
	LOAD_MAX=$((DURATION * 50))
	lab_normal_load >"$WORK/load-$name.log" 2>&1 &
	LOAD_PID=$!
	start_housekeeping "$name"
	local at=""
	if [ "$attack" = 1 ]; then
		local frac wait_s
		frac=$(attack_fraction)
		at=$(calc "$t0 + $frac * $DURATION")
		wait_s=$(calc "$at - $(date +%s.%N)")
		awk "BEGIN { exit !($wait_s > 0) }" && sleep "$wait_s"
		kill -0 "$REC_PID" 2>/dev/null || { cat "$reclog" >&2; die "$name: recorder exited before the attack"; }
		# stamp the exploit time (atomically: the recorder polls the file)
		now >"$marker.tmp" && mv "$marker.tmp" "$marker"
		log "$name: attack at ${frac} of the recording"
		lab_attack >"$WORK/attack-$name.log" 2>&1 || log "$name: attack exited non-zero (see below)"
		sed 's/^/    attack| /' "$WORK/attack-$name.log" | head -n 20 >&2
	fi
	# The recorder stops at --duration (and kills the sandbox); its exit
	# code is then the killed server's, so success is judged by its summary.
	wait "$REC_PID" || true
	REC_PID=""
	wait "$LOAD_PID" 2>/dev/null || true
	LOAD_PID=""
	if [ -n "$JOB_PID" ]; then
		kill "$JOB_PID" 2>/dev/null || true
		wait "$JOB_PID" 2>/dev/null || true
		JOB_PID=""
	fi
	grep -q ' events in ' "$reclog" && [ -s "$zip" ] || {
		cat "$reclog" >&2
		die "$name: recording failed"
	}
	if [ "$attack" = 1 ]; then
		"$PY" - "$zip" <<-'EOF' || die "$name: the exploit time was not stamped"
		import json, sys, zipfile, os
		z = zipfile.ZipFile(sys.argv[1]); n = os.path.basename(sys.argv[1])[:-4]
		m = json.loads(z.read(n + ".json"))
		assert m["exploit"] and m["time"]["exploit"][0]["absolute"] > 0
		EOF
	fi
	log "$(tail -n 1 "$reclog")"
}

lab_main() {
	lab_check_common
	WORK=$(mktemp -d "/tmp/chids-lab-$SCENARIO.XXXXXX")
	trap lab_on_exit EXIT
	trap 'exit 130' INT TERM
	# per-scenario seed, so scenarios do not share attack times
	RANDOM=$((SEED * 1000 + $(printf '%s' "$SCENARIO" | cksum | cut -d' ' -f1) % 1000))
	lab_setup
	local base=$OUT/$SCENARIO
	rm -rf "$base"
	mkdir -p "$base/training" "$base/validation" "$base/test/normal" "$base/test/normal_and_attack"
	log "recording into $base: $N_TRAIN training, $N_VAL validation, $N_NORMAL normal, $N_ATTACK attack, ${DURATION}s each"
	local i
	for ((i = 1; i <= N_TRAIN; i++)); do record_one "$base/training" "$(printf 'train_%02d' "$i")" 0; done
	for ((i = 1; i <= N_VAL; i++)); do record_one "$base/validation" "$(printf 'val_%02d' "$i")" 0; done
	for ((i = 1; i <= N_NORMAL; i++)); do record_one "$base/test/normal" "$(printf 'normal_%02d' "$i")" 0; done
	for ((i = 1; i <= N_ATTACK; i++)); do record_one "$base/test/normal_and_attack" "$(printf 'attack_%02d' "$i")" 1; done
	log "done: $(find "$base" -name '*.zip' | wc -l) recordings, $(du -sh "$base" | cut -f1)"
}
