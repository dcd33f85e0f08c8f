#!/usr/bin/env bash
# ftp-bruteforce: vsftpd (standalone, local users via PAM) with a local lab
# user `chidslab` (home under /srv/chids-lab, throwaway password).
# Normal: a bounded ftplib client that logs in with the right password,
# lists, downloads, uploads and deletes files.
# Attack (CWE-307): hydra guessing the user's password from a word list
# (16 words, 4 parallel tasks, the right password last); a bounded python ftplib
# guessing loop when hydra is not installed.
set -euo pipefail
SCENARIO=ftp-bruteforce
PORT=${PORT:-12121}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need /usr/sbin/vsftpd /usr/bin/tini useradd chpasswd
FTP_USER=chidslab
FTP_PASS=lab-throwaway-7   # a local lab account on loopback; not a secret
# vsftpd cannot be pid 1: its SIGCHLD handler segfaults on orphans it did
# not start (reparented to it). tini is the container init (docker --init).
SERVER_CMD=(/usr/bin/tini -- /usr/sbin/vsftpd "$SRV/vsftpd.conf")

lab_setup() {
	rm -rf "$SRV"
	mkdir -p "$SRV/home" /var/run/vsftpd/empty
	id "$FTP_USER" >/dev/null 2>&1 ||
		useradd -M -d "$SRV/home" -s /bin/bash "$FTP_USER" || die "cannot create user $FTP_USER"
	usermod -d "$SRV/home" "$FTP_USER" >/dev/null 2>&1 || true
	echo "$FTP_USER:$FTP_PASS" | chpasswd
	printf 'Welcome to the lab FTP.\n' >"$SRV/home/readme.txt"
	seq 1 200 | awk '{ print $1 ",item" $1 "," $1 * 3 }' >"$SRV/home/report.csv"
	printf 'note %s\n' $(seq 1 30) >"$SRV/home/notes.txt"
	chown -R "$FTP_USER" "$SRV/home"
	cat >"$SRV/vsftpd.conf" <<-CONF
	listen=YES
	listen_ipv6=NO
	listen_address=127.0.0.1
	listen_port=$PORT
	background=NO
	anonymous_enable=NO
	local_enable=YES
	write_enable=YES
	local_umask=022
	pam_service_name=vsftpd
	secure_chroot_dir=/var/run/vsftpd/empty
	pasv_enable=YES
	pasv_address=127.0.0.1
	pasv_min_port=30100
	pasv_max_port=30199
	xferlog_enable=YES
	vsftpd_log_file=$SRV/vsftpd.log
	max_login_fails=3
	CONF
	# the word list: common passwords, the right one last
	WORDLIST=$SRV/wordlist.txt
	printf '%s\n' 123456 password admin root letmein qwerty 111111 abc123 \
		dragon monkey master welcome login passw0rd secret \
		"$FTP_PASS" >"$WORDLIST"
	chmod 600 "$WORDLIST"
}
lab_prepare() { : >"$SRV/vsftpd.log"; }
lab_cleanup() { [ -d "$SRV" ] && rm -f "$SRV/wordlist.txt"; }

lab_normal_load() {
	"$PY" "$LAB/$SCENARIO/load_ftp.py" --port "$PORT" --user "$FTP_USER" --password "$FTP_PASS" \
		--until "$REC_END" --max "$LOAD_MAX" --seed "$RANDOM"
}

lab_attack() {
	local left
	left=$(awk "BEGIN { t = $REC_END - $(now); printf \"%d\", (t < 1 ? 1 : t) }")
	if command -v hydra >/dev/null; then
		(cd "$WORK" && timeout "$left" hydra -I -f -t 4 -l "$FTP_USER" -P "$WORDLIST" \
			-s "$PORT" 127.0.0.1 ftp) || true
	else
		echo "hydra not installed: python ftplib guessing loop"
		timeout "$left" "$PY" "$LAB/$SCENARIO/load_ftp.py" --port "$PORT" --user "$FTP_USER" \
			--until "$REC_END" --max 100 --guess "$WORDLIST" || true
	fi
}

lab_main
