/*
 * The frame decoder (common/frame.c) on a byte stream as a peer sends
 * it: frames are sized and decoded one after another, as conn.c does,
 * and each decoded frame is re-encoded and must decode to the same.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"

static void
fuzz_roundtrip(const struct frame *f)
{
	struct frame	 g;
	uint8_t		*buf;
	size_t		 len, used;

	if (frame_encode_payload(f->f_type, f->f_request_id, f->f_payload,
	    f->f_payload_len, FRAME_MAX_DEFAULT, &buf, &len) == -1)
		abort();
	if (frame_decode(buf, len, FRAME_MAX_DEFAULT, &g, &used) != FRAME_OK ||
	    used != len || g.f_type != f->f_type ||
	    g.f_request_id != f->f_request_id ||
	    g.f_payload_len != f->f_payload_len ||
	    (f->f_payload_len > 0 &&
	    memcmp(g.f_payload, f->f_payload, f->f_payload_len) != 0))
		abort();
	frame_release(&g);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct frame	 f;
	size_t		 size, used, max;

	/* A small maximum now and then, as a daemon configured so has. */
	max = len > 0 && data[0] == 0xff ? 64 : FRAME_MAX_DEFAULT;
	while (len > 0) {
		if (frame_size(data, len, max, &size) != FRAME_OK)
			break;
		if (size > frame_size_max(max))
			abort();
		if (frame_decode(data, len, max, &f, &used) != FRAME_OK)
			break;
		if (used != size || used > len)
			abort();
		(void)frame_type_name(f.f_type);
		fuzz_roundtrip(&f);
		frame_release(&f);
		data += used;
		len -= used;
	}
	return 0;
}
