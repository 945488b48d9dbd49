/*
 * The one source of "quantum random" material.  By default it is OpenSSL's
 * RAND_bytes; qrand_set_source() plugs in a hardware QRNG, the QKD emulator
 * or a deterministic source for tests.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/rand.h>

#include "log.h"
#include "rand.h"

static qrand_fn	 rand_fn;
static void	*rand_ctx;

/* Chosen once at start-up (or per test); a NULL fn restores RAND_bytes. */
void
qrand_set_source(qrand_fn fn, void *ctx)
{
	rand_fn = fn;
	rand_ctx = fn != NULL ? ctx : NULL;
}

/* Fill buf from RAND_bytes, which takes an int length. */
static int
qrand_openssl(uint8_t *buf, size_t len)
{
	size_t	 chunk;

	while (len > 0) {
		chunk = len > INT_MAX ? INT_MAX : len;
		if (RAND_bytes(buf, (int)chunk) != 1)
			return -1;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

/* Without randomness no key can be made safely: a failing source is fatal. */
void
qrand_bytes(void *buf, size_t len)
{
	int	 rc;

	if (len == 0)
		return;
	if (buf == NULL)
		fatalx("qrand_bytes: NULL buffer");
	if (rand_fn != NULL)
		rc = rand_fn(rand_ctx, buf, len);
	else
		rc = qrand_openssl(buf, len);
	if (rc != 0)
		fatalx("random source failed");
}

/*
 * Uniform integer in [0, bound) by rejection sampling over big-endian 32-bit
 * draws, so that no value is favoured when bound does not divide 2^32.
 */
uint32_t
qrand_uniform(uint32_t bound)
{
	uint8_t		 b[4];
	uint32_t	 r, min;

	if (bound == 0)
		fatalx("qrand_uniform: bound 0");
	if (bound == 1)
		return 0;
	/* 2^32 mod bound: values below it would bias the result. */
	min = -bound % bound;
	for (;;) {
		qrand_bytes(b, sizeof(b));
		r = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		    (uint32_t)b[2] << 8 | b[3];
		if (r >= min)
			return r % bound;
	}
}
