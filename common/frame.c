/*
 * Length-prefixed protobuf framing.  Decoding never trusts the length: a
 * frame above the configured maximum is refused before any allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

enum frame_result
frame_size(const uint8_t *buf, size_t len, size_t max, size_t *size)
{
	uint32_t	n;

	if (len < FRAME_HDRLEN)
		return FRAME_NEED_MORE;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	if (n > max)
		return FRAME_TOO_BIG;
	if (n == 0)
		return FRAME_MALFORMED;
	*size = FRAME_HDRLEN + (size_t)n;
	return FRAME_OK;
}

size_t
frame_size_max(size_t max)
{
	return FRAME_HDRLEN + max;
}

enum frame_result
frame_decode(const uint8_t *buf, size_t len, size_t max, struct frame *f,
    size_t *consumed)
{
	enum frame_result	 r;
	size_t			 size;
	Qroam__Envelope		*env;

	memset(f, 0, sizeof(*f));
	if ((r = frame_size(buf, len, max, &size)) != FRAME_OK)
		return r;
	if (len < size)
		return FRAME_NEED_MORE;
	env = qroam__envelope__unpack(NULL, size - FRAME_HDRLEN,
	    buf + FRAME_HDRLEN);
	if (env == NULL)
		return FRAME_MALFORMED;
	if (env->version != FRAME_VERSION || env->base.n_unknown_fields != 0) {
		qroam__envelope__free_unpacked(env, NULL);
		return FRAME_MALFORMED;
	}
	f->f_env = env;
	f->f_type = env->type;
	f->f_request_id = env->has_request_id ? env->request_id : 0;
	if (env->has_payload) {
		f->f_payload = env->payload.data;
		f->f_payload_len = env->payload.len;
	}
	*consumed = size;
	return FRAME_OK;
}

void
frame_release(struct frame *f)
{
	if (f->f_env != NULL) {
		/* Payloads may carry chip keys or private keys. */
		if (f->f_env->has_payload && f->f_env->payload.data != NULL)
			explicit_bzero(f->f_env->payload.data, f->f_env->payload.len);
		qroam__envelope__free_unpacked(f->f_env, NULL);
	}
	memset(f, 0, sizeof(*f));
}

int
frame_encode_payload(uint32_t type, uint64_t request_id,
    const uint8_t *payload, size_t len, size_t max, uint8_t **out,
    size_t *outlen)
{
	Qroam__Envelope	 env = QROAM__ENVELOPE__INIT;
	uint8_t		*buf;
	size_t		 n;

	env.version = FRAME_VERSION;
	env.type = type;
	if (request_id != 0) {
		env.has_request_id = 1;
		env.request_id = request_id;
	}
	if (payload != NULL) {
		env.has_payload = 1;
		/* Only read: packing copies it. */
		env.payload.data = (uint8_t *)payload;
		env.payload.len = len;
	}
	n = qroam__envelope__get_packed_size(&env);
	if (n > max || (buf = malloc(FRAME_HDRLEN + n)) == NULL)
		return -1;
	buf[0] = n >> 24;
	buf[1] = n >> 16;
	buf[2] = n >> 8;
	buf[3] = n;
	qroam__envelope__pack(&env, buf + FRAME_HDRLEN);
	*out = buf;
	*outlen = FRAME_HDRLEN + n;
	return 0;
}

int
frame_encode(uint32_t type, uint64_t request_id, const ProtobufCMessage *msg,
    size_t max, uint8_t **out, size_t *outlen)
{
	uint8_t		*pl = NULL;
	size_t		 pllen = 0;
	int		 rc;

	if (msg != NULL) {
		pllen = protobuf_c_message_get_packed_size(msg);
		if (pllen > max || (pl = malloc(pllen ? pllen : 1)) == NULL)
			return -1;
		protobuf_c_message_pack(msg, pl);
	}
	rc = frame_encode_payload(type, request_id, pl, pllen, max, out,
	    outlen);
	free(pl);
	return rc;
}

ProtobufCMessage *
frame_unpack(const struct frame *f, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage	*m;

	m = protobuf_c_message_unpack(d, NULL, f->f_payload_len,
	    f->f_payload ? f->f_payload : (const uint8_t *)"");
	if (m == NULL)
		return NULL;
	if (m->n_unknown_fields != 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

/* The MsgType's name from the generated enum descriptor. */
const char *
frame_type_name(uint32_t type)
{
	const ProtobufCEnumValue	*v;

	if (type > INT32_MAX)
		return "?";
	v = protobuf_c_enum_descriptor_get_value(&qroam__msg_type__descriptor,
	    (int)type);
	return v != NULL ? v->name : "?";
}
