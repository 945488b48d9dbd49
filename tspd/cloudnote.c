/*
 * The text of a cloud bus note: "<from> <to> <hex>" (cloudnote.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"

#include "cloudnote.h"

/* A receiver's name: an instance name, or "*" for every instance. */
static int
cloudnote_valid_to(const char *to)
{
	return strcmp(to, CLOUDNOTE_ALL) == 0 || id_valid_name(to);
}

int
cloudnote_format(const char *from, const char *to, const uint8_t *sealed,
    size_t len, char *out, size_t outsize)
{
	size_t	 head;
	int	 n;

	if (!id_valid_name(from) || !cloudnote_valid_to(to) || len == 0 ||
	    len > CLOUDNOTE_SEALED_MAX)
		return -1;
	n = snprintf(out, outsize, "%s %s ", from, to);
	if (n < 0 || (size_t)n >= outsize)
		return -1;
	head = (size_t)n;
	if (outsize - head < 2 * len + 1)
		return -1;
	crypto_hex(sealed, len, out + head);
	return 0;
}

/* Copy the word of s up to the next space into out; the rest, or NULL. */
static const char *
cloudnote_word(const char *s, char *out, size_t outsize)
{
	const char	*sp;
	size_t		 n;

	if ((sp = strchr(s, ' ')) == NULL || (n = (size_t)(sp - s)) == 0 ||
	    n >= outsize)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return sp + 1;
}

int
cloudnote_parse(const char *text, struct cloudnote *n, const char **why)
{
	const char	*hex;
	size_t		 hexlen;

	memset(n, 0, sizeof(*n));
	*why = "malformed";
	if (strlen(text) > CLOUDNOTE_TEXT_MAX) {
		*why = "too long";
		return -1;
	}
	if ((hex = cloudnote_word(text, n->cn_from, sizeof(n->cn_from))) ==
	    NULL || (hex = cloudnote_word(hex, n->cn_to, sizeof(n->cn_to))) ==
	    NULL)
		return -1;
	if (!id_valid_name(n->cn_from) || !cloudnote_valid_to(n->cn_to)) {
		*why = "bad name";
		return -1;
	}
	hexlen = strlen(hex);
	if (hexlen == 0 || hexlen % 2 != 0)
		return -1;
	if ((n->cn_sealed = malloc(hexlen / 2)) == NULL) {
		*why = "no memory";
		return -1;
	}
	if (crypto_unhex(hex, n->cn_sealed, hexlen / 2) == -1) {
		cloudnote_clear(n);
		return -1;
	}
	n->cn_len = hexlen / 2;
	*why = NULL;
	return 0;
}

void
cloudnote_clear(struct cloudnote *n)
{
	free(n->cn_sealed);
	n->cn_sealed = NULL;
	n->cn_len = 0;
}
