/*
 * The text of a note on the cloud bus (cloudbus.h): a PostgreSQL NOTIFY
 * payload, which is text of fewer than 8000 bytes,
 *
 *	<from> SP <to> SP <hex of the keystream-sealed bytes>
 *
 * from is the sending instance's name, to the receiving instance's name
 * or "*" for every instance of the cloud; both go into the AAD of the
 * sealed bytes (keystream.h), so a note whose from or to was changed
 * does not open.  The codec touches no socket.
 */
#ifndef TSPD_CLOUDNOTE_H
#define TSPD_CLOUDNOTE_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "keystream.h"

#define CLOUDNOTE_ALL		KS_TO_ALL	/* the to of a note to all */
#define CLOUDNOTE_TEXT_MAX	7999	/* NOTIFY's limit, without the NUL */
/* The largest sealed note whose text fits. */
#define CLOUDNOTE_SEALED_MAX	((CLOUDNOTE_TEXT_MAX - 2 * (NAME_MAXLEN + 1)) / 2)

struct cloudnote {
	char		 cn_from[NAME_MAXLEN + 1];
	char		 cn_to[NAME_MAXLEN + 1];
	uint8_t		*cn_sealed;	/* malloc'd */
	size_t		 cn_len;
};

/*
 * The text of a note from -> to (a name or CLOUDNOTE_ALL) carrying len
 * sealed bytes, into out (outsize bytes, NUL included); 0, or -1 on a
 * bad name or when it does not fit.
 */
int	cloudnote_format(const char *from, const char *to,
	    const uint8_t *sealed, size_t len, char *out, size_t outsize);
/*
 * Parse text into *n (cn_sealed malloc'd: cloudnote_clear frees it).
 * 0, or -1 with *why a static reason ("malformed", "bad name",
 * "too long", "no memory").
 */
int	cloudnote_parse(const char *text, struct cloudnote *n,
	    const char **why);
void	cloudnote_clear(struct cloudnote *n);

#endif
