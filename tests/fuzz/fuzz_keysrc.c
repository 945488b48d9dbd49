/*
 * The ETSI GS QKD 014 answers the key source reads (common/keysrc_json.c):
 * byte 0 picks the HTTP status, enc_keys or dec_keys, and how many keys
 * were asked for; the rest is the KME's body.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "keysrc.h"
#include "keysrc_json.h"
#include "fuzz.h"

/* The key_IDs a dec_keys request names (seeds.c answers with these). */
static const char *const want[] = {
	"6f1c3a52-7d2e-4b8a-9c01-2f3e4d5a6b7c",
	"0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9",
	"ffffffff-0000-4000-8000-000000000001",
	"12345678-9abc-4def-8123-456789abcdef",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct keysrc_key	 keys[4];
	struct evbuffer		*body;
	char			 why[256];
	size_t			 n;
	int			 code;

	if (len < 1)
		return 0;
	n = 1 + (data[0] & 3);
	code = data[0] & 0x80 ? 503 : data[0] & 0x40 ? 400 : 200;
	if ((body = evbuffer_new()) == NULL ||
	    evbuffer_add(body, data + 1, len - 1) == -1)
		abort();
	fuzz_quiet(1);
	if (keysrc_json_answer(code, body, data[0] & 4 ? want : NULL, n, keys,
	    why, sizeof(why)) == KEYSRC_OK) {
		if (code != 200 || memchr(why, '\0', sizeof(why)) == NULL)
			abort();
	}
	fuzz_quiet(0);
	if (evbuffer_get_length(body) != 0)
		abort();	/* the answer is drained (and wiped) */
	evbuffer_free(body);
	return 0;
}
