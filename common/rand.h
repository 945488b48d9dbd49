/*
 * The one source of "quantum random" material (chip keys, K1, nonces,
 * collision digits).  Defaults to OpenSSL's RAND_bytes; a hardware QRNG,
 * the QKD emulator or a deterministic test source can be plugged in.
 */
#ifndef QROAM_RAND_H
#define QROAM_RAND_H

#include <stddef.h>
#include <stdint.h>

/* Fill buf with len random bytes; return 0 on success, -1 on failure. */
typedef int (*qrand_fn)(void *ctx, uint8_t *buf, size_t len);

/* Replace the source; fn == NULL restores RAND_bytes. */
void	qrand_set_source(qrand_fn fn, void *ctx);
/* Fill buf from the current source; a failing source is fatal. */
void	qrand_bytes(void *buf, size_t len);
/* Uniform integer in [0, bound), bound > 0. */
uint32_t qrand_uniform(uint32_t bound);

#endif
