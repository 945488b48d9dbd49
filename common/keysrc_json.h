/*
 * The JSON of ETSI GS QKD 014 v1.1.1 for 256-bit keys: the bodies the
 * backend sends and the answers it reads.  Private to keysrc_etsi014.c; it
 * touches no socket, so it can be tested on its own.
 */
#ifndef QROAM_KEYSRC_JSON_H
#define QROAM_KEYSRC_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <event2/buffer.h>

#include "keysrc.h"

#define KEYSRC_JSON_BODY_MAX	65536	/* largest KME answer accepted */

/*
 * The body of a request: enc_keys for n keys when want is NULL, else
 * dec_keys for the key_IDs want[0..n-1].  Freed by the caller; NULL when
 * out of memory.
 */
char	*keysrc_json_request(size_t n, const char *const *want);

/*
 * Read the answer with HTTP status code from body, then wipe and drain it.
 * On KEYSRC_OK keys[0..n-1] hold the n keys of the container, n different
 * key_IDs; when want is not NULL, exactly the key_IDs want[0..n-1] in that
 * order (the KME may list them in any order).  Otherwise why says what went
 * wrong, never key bytes, and keys is wiped.
 */
enum keysrc_result keysrc_json_answer(int code, struct evbuffer *body,
	    const char *const *want, size_t n, struct keysrc_key *keys,
	    char *why, size_t whylen);

#endif
