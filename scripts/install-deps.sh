#!/usr/bin/env bash
# Installs the system packages vantage's tests, demo and benchmarks use, from Debian's
# archive. Idempotent: packages already present are not touched, and
# apt-get update runs only when something is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have chromium || need+=(chromium)
have prometheus || need+=(prometheus)
have promtool || need+=(prometheus)
have prometheus-alertmanager || have alertmanager || need+=(prometheus-alertmanager)
have ip || need+=(iproute2)
have sqlite3 || need+=(sqlite3) # a test locks the database from another process
# make bench compares vantage's CPU per probe with blackbox_exporter's.
have prometheus-blackbox-exporter || need+=(prometheus-blackbox-exporter)

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
# Dedupe.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "install-deps: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq

# Never stop or kill services here: a contributor's own Prometheus or
# Alertmanager must keep running, and the tests start their own instances
# on free loopback ports. So that installing the packages does not start
# new daemons either (Debian's maintainer scripts start them where systemd
# or sysvinit runs), a policy-rc.d that denies every start (exit 101)
# covers this one apt transaction. An existing policy-rc.d is the
# administrator's: it is left alone and applies as it is. The services stay
# enabled as the packages ship them; disable them with systemctl if unwanted.
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then
	ours=$policy
	cleanup() { $SUDO rm -f "$ours"; }
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP # exit runs the EXIT trap
	printf '#!/bin/sh\n# Temporary, from vantage scripts/install-deps.sh: no service starts during its install.\nexit 101\n' |
		$SUDO tee "$policy" >/dev/null
	$SUDO chmod 0755 "$policy"
fi
# --no-install-recommends keeps the install small.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
