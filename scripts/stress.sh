#!/bin/sh
# Runs tests with the race detector, several times, while two CPU-burning
# processes compete with them: a test that passes here does not depend on a
# quiet machine. Used by `make stress`; arguments go to `go test`.
#   STRESS_COUNT  runs of each test (default 3)
#   STRESS_RUN    -run pattern (default: every test)
#   GO            the go command (default go)
set -eu
GO=${GO:-go}
pids=""
stop_burners() {
	for pid in $pids; do
		kill "$pid" 2>/dev/null || true
	done
	pids=""
}
trap stop_burners EXIT
trap 'stop_burners; exit 130' INT TERM
for _ in 1 2; do
	sh -c 'while :; do :; done' &
	pids="$pids $!"
done
echo "stress: CPU burners running as PIDs$pids"
run=""
if [ -n "${STRESS_RUN:-}" ]; then
	run="-run=${STRESS_RUN}"
fi
# shellcheck disable=SC2086 # run is empty or one word
"$GO" test -race -count="${STRESS_COUNT:-3}" -timeout 60m $run "$@"
