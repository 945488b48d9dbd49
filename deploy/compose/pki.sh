#!/bin/sh
# Generate the compose testbed's PKI: a CA and one certificate per party
# (CN = identity, OU = role), with scripts/mkpki.sh.
#
# usage: deploy/compose/pki.sh [OUTDIR]     (default deploy/compose/pki)
#
# The containers run as the unprivileged user qroam (uid and gid 10001), so
# the private keys are made readable to it: group 10001 and mode 0640 when
# run as root, else mode 0644.  These are testbed keys; never commit them
# (deploy/compose/pki/ is ignored by git).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/pki}
QROAM_GID=10001

sh "$here/../../scripts/mkpki.sh" "$out" \
    qkd:qkd sched:sched filler:filler registrar:registrar \
    tsp-a:tsp tsp-b:tsp tsp-c:tsp factory:factory operator:operator

chmod 0755 "$out"
for k in "$out"/*.key; do
	[ "$k" = "$out/ca.key" ] && continue
	if [ "$(id -u)" -eq 0 ]; then
		chgrp "$QROAM_GID" "$k"
		chmod 0640 "$k"
	else
		chmod 0644 "$k"
	fi
done
echo "pki.sh: testbed PKI in $out"
