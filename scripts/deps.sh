#!/bin/sh
# Install the Debian 12 packages qroam needs to build, test and run.
# As root, missing packages are installed with apt-get; otherwise the
# missing list is printed and the script fails.
set -eu

PKGS="gcc make libc6-dev pkg-config libevent-dev libssl-dev openssl
libsqlite3-dev sqlite3 libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
libjansson-dev libsystemd-dev python3 python3-cryptography python3-yaml procps
iproute2 systemd mandoc docker-compose mosquitto mosquitto-clients
postgresql libpq-dev haproxy chromium chromium-driver fonts-dejavu-core
prometheus nftables clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root, or: apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

# Debian's prometheus enables and starts a Prometheus server as a system
# service (on 0.0.0.0:9090) wherever init scripts may run.  qroam needs
# only its programs: promtool for make check, prometheus for the tests,
# each started with a configuration of its own.  A service this script
# brought is stopped and disabled again.
case " $missing " in
*" prometheus "*)
	# Without systemd running, systemctl disable still removes the unit's
	# links and those of the init script (systemd-sysv-install).
	if [ -d /run/systemd/system ]; then
		systemctl disable --now prometheus.service >/dev/null 2>&1 || true
	else
		invoke-rc.d prometheus stop >/dev/null 2>&1 || true
		systemctl disable prometheus.service >/dev/null 2>&1 || true
	fi
	;;
esac
