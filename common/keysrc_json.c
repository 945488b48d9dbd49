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

/* A 200 answer: the key container with exactly the one key asked for. */
static enum keysrc_result
ksj_keys(json_t *root, const char *want, char key_id[KEYSRC_IDMAX + 1],
    uint8_t key[KEYSRC_KEYLEN], char *why, size_t whylen)
{
	json_t		*keys, *k, *id, *b64;
	const char	*ids;
	int		 ok;

	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) != 1) {
		snprintf(why, whylen, "KME answer holds no key container with "
		    "one key");
		return KEYSRC_ERROR;
	}
	k = json_array_get(keys, 0);
	id = json_object_get(k, "key_ID");
	b64 = json_object_get(k, "key");
	if (!json_is_string(id) ||
	    !keysrc_valid_key_id(json_string_value(id))) {
		snprintf(why, whylen, "KME answer has no valid key_ID");
		return KEYSRC_ERROR;
	}
	ids = json_string_value(id);
	if (want != NULL && strcmp(ids, want) != 0) {
		snprintf(why, whylen, "KME answered key_ID %s for %s", ids, want);
		return KEYSRC_ERROR;
	}
	if (!json_is_string(b64)) {
		snprintf(why, whylen, "KME answer for key_ID %s has no key", ids);
		return KEYSRC_ERROR;
	}
	ok = ksj_b64_key(json_string_value(b64), json_string_length(b64),
	    key) == 0;
	/* The JSON string is ours to wipe before jansson frees it. */
	crypto_wipe((char *)json_string_value(b64), json_string_length(b64));
	if (!ok) {
		snprintf(why, whylen, "key %s from the KME is not %d bits of "
		    "base64", ids, KSJ_KEY_BITS);
		return KEYSRC_ERROR;
	}
	snprintf(key_id, KEYSRC_IDMAX + 1, "%s", ids);
	return KEYSRC_OK;
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
keysrc_json_answer(int code, struct evbuffer *body, const char *want,
    char key_id[KEYSRC_IDMAX + 1], uint8_t key[KEYSRC_KEYLEN], char *why,
    size_t whylen)
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
	if (code != 200)
		res = ksj_error(code, root, why, whylen);
	else if (root == NULL) {
		snprintf(why, whylen, "KME answer is not JSON (%zu bytes)", len);
		res = KEYSRC_ERROR;
	} else
		res = ksj_keys(root, want, key_id, key, why, whylen);
	json_decref(root);
	return res;
}

char *
keysrc_json_request(const char *want)
{
	json_t	*j;
	char	*s;

	if (want == NULL)
		j = json_pack("{s:i, s:i}", "number", 1, "size", KSJ_KEY_BITS);
	else
		j = json_pack("{s:[{s:s}]}", "key_IDs", "key_ID", want);
	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}
