#!/bin/sh
# Check the Prometheus files of DIR (default deploy/prometheus; `make check`
# passes the copy `make install` put under the documentation) with
# promtool, from Debian's prometheus package:
#   - promtool check config prometheus.yml (which loads rules.yml too);
#   - promtool check rules rules.yml;
#   - promtool test rules rules_test.yml: each alert fires on the series
#     that should fire it, and on no other.
# Prints one line per check and a summary; exits 1 on any failure.
#
# usage: check_prometheus.sh [DIR]
set -u

[ $# -le 1 ] || { echo "usage: check_prometheus.sh [DIR]" >&2; exit 2; }
dir=${1:-$(dirname "$0")/../deploy/prometheus}
dir=$(cd "$dir" && pwd) || exit 2
command -v promtool >/dev/null 2>&1 || {
	echo "check_prometheus: promtool is missing (make deps)" >&2
	exit 1
}
for f in prometheus.yml rules.yml rules_test.yml; do
	[ -f "$dir/$f" ] || { echo "check_prometheus: no $dir/$f" >&2; exit 1; }
done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

# promtool resolves rule_files relative to the file it reads: run in dir.
check() {
	what=$1
	shift
	if (cd "$dir" && promtool "$@") >"$tmp/out" 2>&1; then
		printf '%-34s ok\n' "$what"
	else
		printf '%-34s FAILED\n' "$what"
		sed 's/^/    /' "$tmp/out"
		fail=1
	fi
}

check "promtool check config" check config prometheus.yml
check "promtool check rules" check rules rules.yml
check "promtool test rules" test rules rules_test.yml

[ $fail -eq 0 ] && echo "check_prometheus: ok" || echo "check_prometheus: FAILED"
exit $fail
