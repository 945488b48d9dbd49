/*
 * Chip key sequences (PROTOCOL sections 3 and 10): key codes, chip_id and
 * the checks a TSP applies to a fill record before storing it.
 */
#ifndef QROAM_KEYSEQ_H
#define QROAM_KEYSEQ_H

#include <stddef.h>
#include <stdint.h>

#include "qroam.pb-c.h"

#define KEYSEQ_KEYLEN	32
#define KEYSEQ_MAXM	65536
#define KEYSEQ_MINK	2
#define KEYSEQ_MAXK	64

/* First k lowercase hex chars of SHA-256(key); code holds k+1 bytes. */
void	keyseq_code(const uint8_t key[KEYSEQ_KEYLEN], unsigned k, char *code);
/* chip_id = hex SHA-256(hex(key_1) "-" ... hex(key_m)); out holds 65 bytes. */
void	keyseq_chip_id(const uint8_t (*keys)[KEYSEQ_KEYLEN], size_t m, char out[65]);
/*
 * A fill record is valid when m, k, n are in range, every key is 32 bytes,
 * every code has k lowercase hex chars whose first n-1 match the key's hash,
 * codes strictly ascend, and chip_id matches the keys.  0 or -1 with a
 * reason in why.
 */
int	keyseq_validate(const Qroam__FillRecord *, const char **why);

#endif
