#!/usr/bin/env bash
# Soak benchmark of `chids agent` (not a test): the proof's workloads
# (tests/live_agent_proof.rs: two web containers and a batch worker, two
# images) learnt for at most 3 minutes, then watched for MINUTES (default
# 60). Reports the false-alarm windows per hour per workload (anomaly
# alerts read back from the JetStream stream) and the agent's CPU and peak
# RSS over the watched time. The same run ends with the proof's exec and
# attack checks; their outcome is printed, the numbers are kept either way.
#
#   sudo benches/agent_soak.sh          # 60 minutes; needs podman, runc,
#   sudo benches/agent_soak.sh 20       # nats-server, busybox-static, jq
#
# The report (JSON) is written to $CHIDS_SOAK_REPORT (default
# target/agent_soak.json); the proof test's output to the same name, .log.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
report=${CHIDS_SOAK_REPORT:-$PWD/target/agent_soak.json}
case $minutes in
  '' | *[!0-9.]*) echo "usage: $0 [MINUTES]  (a number; got '$minutes')" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "jq not installed" >&2; exit 2; }
rm -f "$report"
CHIDS_PROOF_DETECT_MINUTES=$minutes CHIDS_PROOF_REPORT=$report \
  cargo test --release --features chids/live --test live_agent_proof -- \
  --include-ignored --nocapture >"$report.log" 2>&1
status=$?
if [ ! -s "$report" ]; then
  echo "no report: the run failed before the watched phase ended; see $report.log" >&2
  tail -40 "$report.log" >&2
  exit 1
fi
jq -r '"watched \(.detected_minutes | . * 10 | round / 10) min after learning; agent CPU \(.agent_cpu_percent_of_one_core | . * 100 | round / 100)% of one core (\(.agent_cpu_seconds | . * 100 | round / 100) s), peak RSS \(.agent_rss_max_mib | . * 10 | round / 10) MiB",
       (.workloads[] | "  \(.workload): \(.windows_scored) windows scored in \(.containers | length) container(s), \(.false_alarm_windows) false-alarm windows = \(.false_alarm_windows_per_hour | . * 100 | round / 100) per hour")' "$report"
jq -r '.false_alarms[] | "  false alarm in \(.container): score \(.score), unseen \(.unseen_syscalls) \(.unseen_args | map(.arg)), rising \(.rising | map(.what))"' "$report"
if [ $status -eq 0 ]; then
  echo "proof checks (exec sessions, attacks): passed"
else
  echo "proof checks: FAILED (exit $status); see $report.log"
  grep -E "panicked|attacks not|false alarms in|alarmed" "$report.log" | head -5
fi
exit $status
