# Shared helpers for benchmarks/compare-*.sh (sourced, not run).
# Sets ROOT (repository root) and provides: peer_python, check_quiet, find_herd, last_json.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS="$ROOT/benchmarks/results"
mkdir -p "$RESULTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

say()  { echo "== $*" >&2; }
warn() { echo "!! $*" >&2; }

# Creates/validates the peer venv; prints its python.
peer_python() {
  "$ROOT/benchmarks/peers/setup" | tail -1
}

# Samples /proc/stat over QUIET_SECONDS (default 1 s) while this script sleeps, so all busy time
# is other processes'. Prints the busy % and warns loudly above QUIET_MAX (default 10). Sets BUSY_PCT.
check_quiet() {
  local secs=${QUIET_SECONDS:-1} max=${QUIET_MAX:-10}
  read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ < /proc/stat
  sleep "$secs"
  read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ < /proc/stat
  local busy=$(( (u2-u1) + (n2-n1) + (s2-s1) + (q2-q1) + (sq2-sq1) + (st2-st1) ))
  local total=$(( busy + (i2-i1) + (w2-w1) ))
  BUSY_PCT=$(awk -v b="$busy" -v t="$total" 'BEGIN { printf "%.1f", (t > 0 ? 100*b/t : 0) }')
  local top
  top=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 { printf "%s(%s%%) ", $2, $1 }' | head -c 300)
  if awk -v p="$BUSY_PCT" -v m="$max" 'BEGIN { exit !(p > m) }'; then
    warn "################################################################################"
    warn "MACHINE NOT QUIET: other processes kept the CPUs ${BUSY_PCT}% busy over ${secs}s (> ${max}%)."
    warn "Top CPU users (ps, lifetime average): ${top:-?}"
    warn "Figures from this run are NOISY; do not use them as final numbers."
    warn "################################################################################"
  else
    say "machine quiet enough: ${BUSY_PCT}% busy over ${secs}s"
  fi
}

# Prints the herd binary path, or nothing (with a message) if it cannot be had.
# Honours $HERD if already set; else runs scripts/build (last line = binary path).
find_herd() {
  if [[ -n "${HERD:-}" ]]; then
    if [[ -x "$HERD" ]]; then echo "$HERD"; return 0; fi
    warn "HERD=$HERD is not an executable"; return 1
  fi
  if [[ ! -x "$ROOT/scripts/build" ]]; then
    warn "herd unavailable: $ROOT/scripts/build does not exist (yet); peer numbers only"
    return 1
  fi
  local h
  if ! h=$(cd "$ROOT" && scripts/build | tail -1); then
    warn "herd unavailable: scripts/build failed; peer numbers only"; return 1
  fi
  if [[ -z "$h" || ! -x "$h" ]]; then
    warn "herd unavailable: scripts/build printed '$h', not an executable; peer numbers only"; return 1
  fi
  echo "$h"
}

# Runs a command, shows its output on stderr, prints its last stdout line if it is a JSON object.
last_json() {
  local out rc=0
  out=$("$@") || rc=$?
  printf '%s\n' "$out" | sed '$d' | sed 's/^/   /' >&2
  local last; last=$(printf '%s\n' "$out" | tail -1)
  if [[ $rc -ne 0 || "$last" != \{* ]]; then
    warn "command failed (exit $rc) or printed no JSON last line: $*"
    echo "{\"error\": \"exit $rc\", \"command\": \"$(echo "$*" | sed 's/"/\\"/g')\"}"
    return 0
  fi
  echo "$last"
}

# Runs a command under `/usr/bin/time -v` and prints its last stdout line (a JSON object, see
# last_json) with "time_v": {"peak_rss_bytes", "wall_s", "user_s", "sys_s"} added: the kernel's
# peak RSS of the process, its end-to-end wall time (process start and imports included) and its
# CPU seconds (steadier than wall time on a busy machine). Needs $PY.
measured_json() {
  local tv j
  tv=$(mktemp)
  j=$(last_json /usr/bin/time -v -o "$tv" "$@")
  "$PY" - "$tv" "$j" <<'PYEOF'
import json, re, sys
text = open(sys.argv[1]).read()
doc = json.loads(sys.argv[2])
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
secs = None
if wall:
    secs = 0.0
    for part in wall.group(1).split(":"):
        secs = secs * 60 + float(part)
user = re.search(r"User time \(seconds\): ([\d.]+)", text)
system = re.search(r"System time \(seconds\): ([\d.]+)", text)
doc["time_v"] = {"peak_rss_bytes": int(rss.group(1)) * 1024 if rss else None, "wall_s": secs,
                 "user_s": float(user.group(1)) if user else None, "sys_s": float(system.group(1)) if system else None}
print(json.dumps(doc))
PYEOF
  rm -f "$tv"
}
