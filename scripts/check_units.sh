#!/bin/sh
# Check what `make install DESTDIR=DIR` put under DIR:
#   - every systemd unit passes `systemd-analyze verify` (template units as
#     an instance), with its ExecStart binaries taken from DIR and its
#     Documentation= man page from DIR's man directory;
#   - every unit's `systemd-analyze security --offline=yes` exposure is at
#     most MAX_EXPOSURE (2.0, "OK");
#   - every man page passes `mandoc -Tlint -Wwarning`;
#   - every example configuration passes its daemon's -n check.
# Prints one line per unit and a summary; exits 1 on any failure.
#
# usage: check_units.sh DESTDIR
set -u

MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

[ $# -eq 1 ] || { echo "usage: check_units.sh DESTDIR" >&2; exit 2; }
dest=$(cd "$1" && pwd) || exit 2
for tool in systemd-analyze mandoc; do
	command -v $tool >/dev/null 2>&1 || {
		echo "check_units: $tool is missing (make deps)" >&2
		exit 1
	}
done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

units=$(find "$dest" -path '*/lib/systemd/system/*.service' -type f | sort)
mandirs=$(find "$dest" -type d -path '*/share/man' | head -n 1)
[ -n "$units" ] || { echo "check_units: no units under $dest" >&2; exit 1; }

# The unit as systemd would load it, with DESTDIR in front of every
# command that was installed there (the daemons; /bin/kill stays the
# system's); a template gets the instance name "example".
stage() {
	name=$(basename "$1")
	case $name in
	*@.service) name=${name%@.service}@example.service ;;
	esac
	mkdir -p "$tmp/units"
	awk -v d="$dest" '/^Exec[A-Za-z]*=/ {
		match($0, /^Exec[A-Za-z]*=[-@:+!]*/)
		pre = substr($0, 1, RLENGTH)
		rest = substr($0, RLENGTH + 1)
		split(rest, w, " ")
		if (system("test -f \"" d w[1] "\"") == 0)
			$0 = pre d rest
	} { print }' "$1" > "$tmp/units/$name"
	echo "$tmp/units/$name"
}

# verify looks up Documentation=man: pages with man(1); without man-db
# installed it skips that, and mandoc checks the pages below.
manopt=--man=yes
command -v man >/dev/null 2>&1 || manopt=--man=no

printf '%-28s %-8s %s\n' UNIT VERIFY EXPOSURE
for u in $units; do
	staged=$(stage "$u")
	name=$(basename "$staged")
	# verify prints nothing for a clean unit; anything it says fails.
	if MANPATH=$mandirs systemd-analyze verify $manopt "$staged" \
	    >"$tmp/verify.out" 2>&1 && [ ! -s "$tmp/verify.out" ]; then
		v=ok
	else
		v=FAILED
		fail=1
	fi
	exp=$(systemd-analyze security --offline=yes --no-pager "$staged" \
	    2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: //p' |
	    awk '{ print $1, $2 }')
	score=${exp%% *}
	if [ -z "$score" ] || ! awk -v s="$score" -v m="$MAX_EXPOSURE" \
	    'BEGIN { exit !(s + 0 <= m + 0) }'; then
		exp="${exp:-none} (above $MAX_EXPOSURE)"
		fail=1
	fi
	printf '%-28s %-8s %s\n' "$name" "$v" "$exp"
	[ "$v" = ok ] || sed "s#$tmp/units/##; s/^/    /" "$tmp/verify.out"
done

pages=$(find "$dest" -path '*/share/man/man[1-9]/*' -type f | sort)
if [ -z "$pages" ]; then
	echo "man pages: none installed"
	fail=1
elif mandoc -Tlint -Wwarning $pages >"$tmp/lint.out" 2>&1; then
	echo "man pages: $(echo "$pages" | wc -l) pass mandoc -Tlint -Wwarning"
else
	echo "man pages: mandoc -Tlint -Wwarning:"
	sed "s#$dest##; s/^/    /" "$tmp/lint.out"
	fail=1
fi

# Example configurations, their /etc/qroam paths moved to a scratch copy.
examples=$(find "$dest" -path '*/share/doc/qroam/examples' -type d | head -n 1)
sbin=$(dirname "$(find "$dest" -path '*/sbin/tspd' -type f | head -n 1)")
if [ -z "$examples" ] || [ ! -x "$sbin/tspd" ]; then
	echo "examples: missing"
	fail=1
else
	mkdir -p "$tmp/etc"
	for f in "$examples"/*.conf; do
		sed "s#/etc/qroam/#$tmp/etc/#g" "$f" > "$tmp/etc/$(basename "$f")"
	done
	n=0
	for f in "$tmp"/etc/*.conf; do
		d=$(basename "$f" .conf)
		d=${d%%-*}
		# qroamctl is a user command: bin, next to sbin.
		[ "$d" = qroamctl ] && [ -x "$sbin/../bin/qroamctl" ] &&
		    d=../bin/qroamctl
		[ -x "$sbin/$d" ] || continue
		n=$((n + 1))
		"$sbin/$d" -n -f "$f" >/dev/null 2>"$tmp/n.out" || {
			echo "examples: ${d##*/} -n -f $(basename "$f") failed:"
			sed "s#$tmp/etc/##; s/^/    /" "$tmp/n.out"
			fail=1
		}
	done
	echo "examples: $n configurations checked with -n"
fi

[ $fail -eq 0 ] && echo "check_units: ok" || echo "check_units: FAILED"
exit $fail
