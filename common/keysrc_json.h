/*
 * The JSON of ETSI GS QKD 014 v1.1.1 for one 256-bit key: the bodies the
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
 * The body of a request: enc_keys for one key when want is NULL, else
 * dec_keys for key_ID want.  Freed by the caller; NULL when out of memory.
 */
char	*keysrc_json_request(const char *want);

/*
 * Read the answer with HTTP status code from body, then wipe and drain it.
 * On KEYSRC_OK key_id and key hold the one key (the key_ID asked for when
 * want is not NULL); otherwise why says what went wrong, never key bytes.
 */
enum keysrc_result keysrc_json_answer(int code, struct evbuffer *body,
	    const char *want, char key_id[KEYSRC_IDMAX + 1],
	    uint8_t key[KEYSRC_KEYLEN], char *why, size_t whylen);

#endif
