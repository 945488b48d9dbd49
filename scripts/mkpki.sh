#!/bin/sh
# Build a test PKI with the openssl CLI: one EC P-256 CA and, per party, a key
# and a certificate signed by it with CN = NAME and OU = ROLE, valid for
# localhost / 127.0.0.1 as both TLS server and client.
#
# usage: mkpki.sh OUTDIR NAME:ROLE [NAME:ROLE ...]
#
# Writes OUTDIR/ca.pem (+ ca.key) and OUTDIR/NAME.pem, OUTDIR/NAME.key (0600).
# Idempotent: an existing CA is reused and existing party certificates that
# the CA verifies are kept.
set -eu

usage() {
	echo "usage: mkpki.sh OUTDIR NAME:ROLE [NAME:ROLE ...]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
out=$1
shift

umask 077
mkdir -p "$out"

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.pem" ]; then
	openssl ecparam -name prime256v1 -genkey -noout -out "$out/ca.key.tmp" 2>/dev/null
	openssl req -new -x509 -sha256 -days 3650 -key "$out/ca.key.tmp" \
	    -subj "/CN=qroam test CA/OU=ca" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -out "$out/ca.pem.tmp"
	mv "$out/ca.key.tmp" "$out/ca.key"
	mv "$out/ca.pem.tmp" "$out/ca.pem"
	chmod 0644 "$out/ca.pem"
fi

ext="$out/.party.ext"
cat > "$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF

for spec in "$@"; do
	case $spec in
	*:*) ;;
	*) usage ;;
	esac
	name=${spec%%:*}
	role=${spec#*:}
	[ -n "$name" ] && [ -n "$role" ] || usage
	case $name in
	*/*|.*) echo "mkpki.sh: bad name: $name" >&2; exit 2 ;;
	esac

	crt="$out/$name.pem"
	key="$out/$name.key"
	if [ -s "$crt" ] && [ -s "$key" ] &&
	    openssl verify -CAfile "$out/ca.pem" "$crt" >/dev/null 2>&1 &&
	    [ "$(openssl x509 -in "$crt" -noout -subject -nameopt sep_multiline,sname |
	    sed -n 's/^ *OU=//p')" = "$role" ]; then
		continue
	fi

	openssl ecparam -name prime256v1 -genkey -noout -out "$key.tmp" 2>/dev/null
	openssl req -new -sha256 -key "$key.tmp" \
	    -subj "/CN=$name/OU=$role" -out "$out/$name.csr"
	openssl x509 -req -sha256 -days 3650 -in "$out/$name.csr" \
	    -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
	    -CAserial "$out/ca.srl" -extfile "$ext" -out "$crt.tmp" 2>/dev/null
	rm -f "$out/$name.csr"
	chmod 0600 "$key.tmp"
	chmod 0644 "$crt.tmp"
	mv "$key.tmp" "$key"
	mv "$crt.tmp" "$crt"
done
rm -f "$ext"
