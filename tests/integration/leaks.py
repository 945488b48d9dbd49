"""Finding secrets in logs: chip keys, K1 and the private parts of Prv, as
hex (any case, any 16-hex-char window) or base64."""

import base64
import binascii
import re

def _der_read(buf, i):
    """One DER TLV at i: (tag, value_start, value_end)."""
    tag = buf[i]
    ln = buf[i + 1]
    j = i + 2
    if ln & 0x80:
        nb = ln & 0x7F
        ln = int.from_bytes(buf[j:j + nb], "big")
        j += nb
    return tag, j, j + ln


def rsa_private_parts(der):
    """The private integers (d, p, q, dp, dq, qinv) of a PKCS#8 or PKCS#1
    RSA private key, as big-endian bytes; [] if der is not one."""
    try:
        tag, s, e = _der_read(der, 0)
        if tag != 0x30:
            return []
        items = []
        i = s
        while i < e:
            t, vs, ve = _der_read(der, i)
            items.append((t, vs, ve))
            i = ve
        if len(items) >= 3 and items[1][0] == 0x30 and items[2][0] == 0x04:
            return rsa_private_parts(der[items[2][1]:items[2][2]])
        if len(items) >= 9 and all(t == 0x02 for t, _, _ in items[:9]):
            return [der[vs:ve].lstrip(b"\0") for _, vs, ve in items[3:9]]
    except (IndexError, ValueError):
        pass
    return []


class Secrets:
    """Secret byte strings and the 16-hex-char windows of their hex forms."""

    WINDOW = 16

    def __init__(self):
        self.items = {}		# bytes -> label
        self.windows = {}	# 16-char lowercase hex -> label

    def add(self, data, label):
        if data is None:
            return
        if isinstance(data, memoryview):
            data = bytes(data)
        if not isinstance(data, bytes) or len(data) < 8 or data in self.items:
            return
        self.items[data] = label
        h = data.hex()
        for i in range(len(h) - self.WINDOW + 1):
            self.windows.setdefault(h[i:i + self.WINDOW], label)

    def add_private_key(self, der, label):
        if isinstance(der, str) and "PRIVATE KEY" in der:
            body = "".join(l for l in der.splitlines() if l and not l.startswith("-----"))
            try:
                der = base64.b64decode(body)
            except binascii.Error:
                return
        if isinstance(der, memoryview):
            der = bytes(der)
        if not isinstance(der, bytes):
            return
        parts = rsa_private_parts(der)
        for p in parts:
            self.add(p, label)
        if parts:
            self.items.setdefault(der, label)

    def __len__(self):
        return len(self.items)

    def find(self, text):
        """[(label, evidence)] for every secret found in text as hex (any
        case, 16+ chars) or base64."""
        hits = []
        for m in re.finditer(r"[0-9A-Fa-f]{%d,}" % self.WINDOW, text):
            run = m.group(0).lower()
            for i in range(len(run) - self.WINDOW + 1):
                lab = self.windows.get(run[i:i + self.WINDOW])
                if lab:
                    hits.append((lab, "hex %r" % run[max(0, i - 8):i + 40]))
                    break
        for m in re.finditer(r"[A-Za-z0-9+/_-]{22,}", text):
            run = m.group(0).replace("-", "+").replace("_", "/")
            for off in range(4):
                chunk = run[off:]
                chunk = chunk[:len(chunk) - len(chunk) % 4]
                try:
                    h = base64.b64decode(chunk).hex()
                except (binascii.Error, ValueError):
                    continue
                for i in range(len(h) - self.WINDOW + 1):
                    lab = self.windows.get(h[i:i + self.WINDOW])
                    if lab:
                        hits.append((lab, "base64 %r" % m.group(0)[:60]))
                        break
                else:
                    continue
                break
        return hits
