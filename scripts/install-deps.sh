#!/usr/bin/env bash
# Installs the system packages vantage's tests and demo use, from Debian's
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
# --no-install-recommends keeps the install small; services are not started
# by the tests through systemd, they start the binaries themselves.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages start their daemons on install where systemd runs; the
# tests want the ports free and start their own instances.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
	$SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
	$SUDO pkill -x "$svc" >/dev/null 2>&1 || true
done
