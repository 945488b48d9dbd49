/*
 * The JSON side of the ETSI GS QKD 014 key source (jansson): request bodies
 * and the parsing of the KME's answers.  Only what the standard fixes is
 * read (field names, status codes).  Every copy of key text is wiped before
 * its memory is released, and no key byte reaches an error text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "keysrc_json.h"

#define KSJ_B64_MAX	64		/* longest base64 text of one key */
#define KSJ_MSG_MAX	160		/* longest KME message quoted in why */
#define KSJ_KEY_BITS	(KEYSRC_KEYLEN * 8)

/* Copy the printable ASCII of s (at most KSJ_MSG_MAX chars) into buf. */
static void
ksj_clean_text(const char *s, char *buf, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; s[i] != '\0' && n + 1 < len && n < KSJ_MSG_MAX; i++)
		buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[n] = '\0';
}

/* Decode the base64 text of one key; exactly KEYSRC_KEYLEN bytes or -1. */
static int
ksj_b64_key(const char *s, size_t len, uint8_t key[KEYSRC_KEYLEN])
{
	uint8_t	buf[KSJ_B64_MAX / 4 * 3];
	size_t	pad = 0;
	int	n, rc = -1;

	if (len == 0 || len > KSJ_B64_MAX || len % 4 != 0)
		return -1;
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if (n >= 0 && (size_t)n - pad == KEYSRC_KEYLEN) {
		memcpy(key, buf, KEYSRC_KEYLEN);
		rc = 0;
	}
	crypto_wipe(buf, sizeof(buf));
	return rc;
}

/*
 * One key of a container into *out: a valid key_ID, and a key of
 * KSJ_KEY_BITS in base64 (its JSON text is wiped).  0 or -1 with why.
 */
static int
ksj_key(json_t *k, struct keysrc_key *out, char *why, size_t whylen)
{
	json_t		*id, *b64;
	const char	*ids;
	int		 ok;

	id = json_object_get(k, "key_ID");
	b64 = json_object_get(k, "key");
	if (!json_is_string(id) ||
	    !keysrc_valid_key_id(json_string_value(id))) {
		snprintf(why, whylen, "KME answer has no valid key_ID");
		return -1;
	}
	ids = json_string_value(id);
	if (!json_is_string(b64)) {
		snprintf(why, whylen, "KME answer for key_ID %s has no key", ids);
		return -1;
	}
	ok = ksj_b64_key(json_string_value(b64), json_string_length(b64),
	    out->kk_key) == 0;
	/* The JSON string is ours to wipe before jansson frees it. */
	crypto_wipe((char *)json_string_value(b64), json_string_length(b64));
	if (!ok) {
		snprintf(why, whylen, "key %s from the KME is not %d bits of "
		    "base64", ids, KSJ_KEY_BITS);
		return -1;
	}
	snprintf(out->kk_id, sizeof(out->kk_id), "%s", ids);
	return 0;
}

/* Where key_ID id goes in the answer: its index in want, or -1. */
static long
ksj_slot(const char *const *want, size_t n, const char *id)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(want[i], id) == 0)
			return (long)i;
	return -1;
}

/*
 * A 200 answer: the key container with exactly n keys of n different
 * key_IDs, those of want (in want's order) when want is not NULL.
 */
static enum keysrc_result
ksj_keys(json_t *root, const char *const *want, size_t n,
    struct keysrc_key *keys, char *why, size_t whylen)
{
	struct keysrc_key	 k;
	json_t			*arr;
	size_t			 i, j;
	long			 slot;

	arr = json_object_get(root, "keys");
	if (!json_is_array(arr) || json_array_size(arr) != n) {
		snprintf(why, whylen, "KME answer holds no key container with "
		    "%zu key%s", n, n == 1 ? "" : "s");
		return KEYSRC_ERROR;
	}
	for (i = 0; i < n; i++) {
		if (ksj_key(json_array_get(arr, i), &k, why, whylen) == -1)
			goto fail;
		slot = (long)i;
		if (want != NULL && (slot = ksj_slot(want, n, k.kk_id)) == -1) {
			snprintf(why, whylen, "KME answered key_ID %s for %s%s",
			    k.kk_id, want[0], n > 1 ? " and others" : "");
			goto fail;
		}
		for (j = 0; j < i && want == NULL; j++)
			if (strcmp(keys[j].kk_id, k.kk_id) == 0)
				break;
		if ((want == NULL && j < i) ||
		    (want != NULL && keys[slot].kk_id[0] != '\0')) {
			snprintf(why, whylen, "KME answered key_ID %s twice",
			    k.kk_id);
			goto fail;
		}
		keys[slot] = k;
	}
	crypto_wipe(&k, sizeof(k));
	return KEYSRC_OK;
 fail:
	crypto_wipe(&k, sizeof(k));
	crypto_wipe(keys, n * sizeof(*keys));
	return KEYSRC_ERROR;
}

/* An error answer: 503, 400/401 or anything else, with the KME's message. */
static enum keysrc_result
ksj_error(int code, json_t *root, char *why, size_t whylen)
{
	json_t			*m = json_object_get(root, "message");
	enum keysrc_result	 res;
	char			 msg[KSJ_MSG_MAX + 1];

	if (json_is_string(m))
		ksj_clean_text(json_string_value(m), msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "no message");
	if (code == 503)
		res = KEYSRC_UNAVAILABLE;
	else if (code == 400 || code == 401)
		res = KEYSRC_REFUSED;
	else
		res = KEYSRC_ERROR;
	snprintf(why, whylen, "KME answered %d: %s", code, msg);
	return res;
}

enum keysrc_result
keysrc_json_answer(int code, struct evbuffer *body, const char *const *want,
    size_t n, struct keysrc_key *keys, char *why, size_t whylen)
{
	enum keysrc_result	 res;
	json_error_t		 jerr;
	json_t			*root = NULL;
	size_t			 len = evbuffer_get_length(body);
	unsigned char		*p = NULL;

	if (len > 0 && len <= KEYSRC_JSON_BODY_MAX &&
	    (p = evbuffer_pullup(body, (ev_ssize_t)len)) != NULL) {
		root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES,
		    &jerr);
		crypto_wipe(p, len);
	}
	evbuffer_drain(body, len);
	memset(keys, 0, n * sizeof(*keys));
	if (code != 200)
		res = ksj_error(code, root, why, whylen);
	else if (root == NULL) {
		snprintf(why, whylen, "KME answer is not JSON (%zu bytes)", len);
		res = KEYSRC_ERROR;
	} else
		res = ksj_keys(root, want, n, keys, why, whylen);
	json_decref(root);
	return res;
}

char *
keysrc_json_request(size_t n, const char *const *want)
{
	json_t	*j, *ids = NULL;
	char	*s;
	size_t	 i;

	if (want == NULL)
		j = json_pack("{s:I, s:i}", "number", (json_int_t)n, "size",
		    KSJ_KEY_BITS);
	else {
		if ((ids = json_array()) == NULL)
			return NULL;
		for (i = 0; i < n; i++)
			if (json_array_append_new(ids, json_pack("{s:s}",
			    "key_ID", want[i])) == -1) {
				json_decref(ids);
				return NULL;
			}
		j = json_pack("{s:o}", "key_IDs", ids);
	}
	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}
