/*
 * The F1 fill algorithm (PROTOCOL section 6, F1 steps 1-5): draw the keys,
 * derive their codes, resolve code collisions, order the sequence by code
 * and compute the chip_id.  No I/O; unit-tested on its own.
 */
#ifndef FILLERD_FILL_H
#define FILLERD_FILL_H

#include <stdint.h>

#include "keyseq.h"
#include "qroam.pb-c.h"

/*
 * Draw m keys of 32 bytes from qrand_bytes and build their fill record:
 * 2 <= m <= KEYSEQ_MAXM, KEYSEQ_MINK <= k <= KEYSEQ_MAXK, 1 <= n <= k.
 * 0 with *out set (free with fill_record_free), or -1 with a reason in *why
 * (bad parameters, codes that cannot be made unique, no memory).
 */
int	fill_generate(unsigned m, unsigned k, unsigned n,
	    Qroam__FillRecord **out, const char **why);

/*
 * F1 steps 2-5 on given keys: codes, collision resolution with digits from
 * qrand_bytes (the low nibble of one byte per digit), ascending code order,
 * chip_id.  fill_generate uses it after
 * drawing its keys.  Same results as fill_generate.
 */
int	fill_from_keys(const uint8_t (*keys)[KEYSEQ_KEYLEN], unsigned m,
	    unsigned k, unsigned n, Qroam__FillRecord **out, const char **why);

/* Wipe the keys of a record made by fill_generate/fill_from_keys, free it. */
void	fill_record_free(Qroam__FillRecord *);

#endif
