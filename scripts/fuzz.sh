#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME, one after another with one worker,
# and records per target the command, wall time, execs, new interesting
# inputs, crashes and peak RSS between the result markers of
# docs/fuzzing.md (see that file). Logs go to $FUZZ_LOGDIR.
#
#   FUZZTIME=10m ./scripts/fuzz.sh            # all targets
#   FUZZTIME=60s ./scripts/fuzz.sh FuzzParse  # some targets
set -euo pipefail

FUZZTIME=${FUZZTIME:-10m}
GO=${GO:-go}
NICE=${NICE:-15}
DOC=${FUZZ_DOC:-docs/fuzzing.md}
LOGDIR=${FUZZ_LOGDIR:-$(mktemp -d /tmp/vantage-fuzz.XXXXXX)}
mkdir -p "$LOGDIR"

# package target, in the order docs/fuzzing.md lists them.
TARGETS="
./checks FuzzParse
./checks FuzzInclude
./checks FuzzExpandEnv
./checks FuzzByteSize
./checks FuzzDuration
./checks FuzzNodeAddr
./checks FuzzParseExpr
./alerting FuzzAnnotation
./web FuzzAPIQuery
./probe/dnsprobe FuzzDNSReply
./probe/netpath FuzzProxyReply
./probe/httpprobe FuzzJSONExpect
"

seconds() { # 90s, 10m, 1h -> seconds
	local n=${1%[smh]}
	case $1 in
	*h) echo $((n * 3600)) ;; *m) echo $((n * 60)) ;; *s) echo "$n" ;; *) echo "$1" ;;
	esac
}

# peak_rss PID OUT: every second, records in OUT the largest VmHWM (kB) of
# the fuzzing processes under PID (the test binary and its workers; not
# the compiler), until PID exits.
peak_rss() {
	local root=$1 out=$2 max=0 pid pp hwm
	echo 0 >"$out"
	while kill -0 "$root" 2>/dev/null; do
		for pid in $(pgrep -f -- '-test\.fuzz' || true); do
			# Only descendants of root (at most four levels down).
			pp=$pid
			for _ in 1 2 3 4; do
				pp=$(awk '/^PPid:/ {print $2}' "/proc/$pp/status" 2>/dev/null || echo 1)
				[ "$pp" = "$root" ] && break
			done
			[ "$pp" = "$root" ] || continue
			hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
			if [ "${hwm:-0}" -gt "$max" ]; then
				max=$hwm
				echo "$max" >"$out"
			fi
		done
		sleep 1
	done
}

limit=$(($(seconds "$FUZZTIME") + 600)) # compile time and a margin; past it the run hung
rows=""
start_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine="nproc $(nproc), load average at start $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sm), $($GO version | cut -d' ' -f3)"

while read -r pkg target; do
	[ -n "$pkg" ] || continue
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$target"; then
		continue
	fi
	cmd="nice -n $NICE $GO test $pkg -run '^\$' -fuzz '^$target\$' -fuzztime $FUZZTIME -parallel 1"
	log="$LOGDIR/$target.log"
	echo "== $cmd" >&2
	t0=$(date +%s)
	set +e
	nice -n "$NICE" timeout --signal=KILL "$limit" \
		"$GO" test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -parallel 1 >"$log" 2>&1 &
	gopid=$!
	peak_rss "$gopid" "$LOGDIR/$target.rss" &
	rsspid=$!
	wait "$gopid"
	rc=$?
	wait "$rsspid"
	set -e
	dur=$(($(date +%s) - t0))
	last=$(grep 'execs:' "$log" | tail -1 || true)
	execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
	newi=$(sed -n 's/.*new interesting: \([0-9]*\).*/\1/p' <<<"$last")
	elapsed=$(sed -n 's/.*elapsed: \([0-9hms]*\),.*/\1/p' <<<"$last")
	rss=$(($(cat "$LOGDIR/$target.rss") / 1024))
	case $rc in
	0) crashes="none" ;;
	137) crashes="**hang: killed after ${limit}s**" ;;
	*) crashes="**FAIL** ($(grep -o 'testdata/fuzz/[^ ]*' "$log" | head -1 || echo "exit $rc"))" ;;
	esac
	echo "   ${elapsed:-?} fuzzing, ${dur}s wall, ${execs:-?} execs, ${newi:-?} new interesting, crashes: $crashes, peak RSS ${rss} MiB" >&2
	rows+="| \`$target\` | \`$cmd\` | ${dur}s (${elapsed:-?} fuzzing) | ${execs:-?} | ${newi:-?} | $crashes | ${rss} MiB |"$'\n'
done <<<"$TARGETS"

table="Run of $start_date, FUZZTIME=$FUZZTIME, on: $machine. Logs: $LOGDIR."$'\n\n'
table+="| target | command | wall time | execs | new interesting | crashes | peak RSS |"$'\n'
table+="|---|---|---|---|---|---|---|"$'\n'
table+="$rows"

# Replace what is between the markers with this run's table.
TABLE="$table" awk '
	/<!-- fuzz-results:start -->/ { print; printf "%s", ENVIRON["TABLE"]; skip = 1; next }
	/<!-- fuzz-results:end -->/ { skip = 0 }
	!skip { print }
' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
echo "results written to $DOC" >&2
