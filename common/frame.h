/*
 * Framing (PROTOCOL section 5): 4-byte big-endian length, then a protobuf
 * Envelope.  Pure codec: no sockets, so it is unit-tested and fuzzed alone.
 * This is the one module that knows the layout of a frame; the I/O layer
 * asks it how long the next frame is and hands it whole frames to decode.
 */
#ifndef QROAM_FRAME_H
#define QROAM_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "qroam.pb-c.h"

#define FRAME_HDRLEN		4	/* bytes frame_size needs to answer */
#define FRAME_MAX_DEFAULT	65536	/* largest Envelope, by default */
#define FRAME_VERSION		1

enum frame_result {
	FRAME_OK,		/* one frame decoded */
	FRAME_NEED_MORE,	/* not a whole frame yet */
	FRAME_TOO_BIG,		/* length above the maximum */
	FRAME_MALFORMED,	/* envelope does not decode, or bad version */
};

struct frame {
	uint32_t	 f_type;
	uint64_t	 f_request_id;
	const uint8_t	*f_payload;
	size_t		 f_payload_len;
	Qroam__Envelope	*f_env;		/* owns f_payload */
};

/*
 * How many bytes the frame at the start of buf takes, header included,
 * judged from its header alone: FRAME_OK and *size, FRAME_NEED_MORE while
 * fewer than FRAME_HDRLEN bytes are in, FRAME_TOO_BIG for an Envelope
 * longer than max, FRAME_MALFORMED for an empty one.
 */
enum frame_result frame_size(const uint8_t *buf, size_t len, size_t max,
	    size_t *size);
/* The most bytes a frame whose Envelope is at most max long takes. */
size_t	frame_size_max(size_t max);

/*
 * Decode the frame at the start of buf.  On FRAME_OK *consumed is set and f
 * must be released with frame_release().  Never reads past len.
 */
enum frame_result frame_decode(const uint8_t *buf, size_t len, size_t max,
	    struct frame *f, size_t *consumed);
void	frame_release(struct frame *);

/*
 * Encode an Envelope around msg (NULL for an empty payload) into a malloc'd
 * buffer that starts with the length header.  0 or -1 (too big, no memory).
 */
int	frame_encode(uint32_t type, uint64_t request_id,
	    const ProtobufCMessage *msg, size_t max, uint8_t **out, size_t *outlen);
/* As frame_encode, around a payload packed already (NULL: none). */
int	frame_encode_payload(uint32_t type, uint64_t request_id,
	    const uint8_t *payload, size_t len, size_t max, uint8_t **out,
	    size_t *outlen);

/*
 * Unpack the payload of f as a message of descriptor d.  NULL when it does
 * not decode, misses a required field, or carries unknown fields.  Free
 * with protobuf_c_message_free_unpacked().
 */
ProtobufCMessage *frame_unpack(const struct frame *f,
	    const ProtobufCMessageDescriptor *d);

/* Name of a MsgType for logs and metrics ("MT_M3"), "?" if unknown. */
const char *frame_type_name(uint32_t type);

#endif
