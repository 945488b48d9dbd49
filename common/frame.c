/*
 * Length-prefixed protobuf framing.  Decoding never trusts the length: a
 * frame above the configured maximum is refused before any allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

enum frame_result
frame_decode(const uint8_t *buf, size_t len, size_t max, struct frame *f,
    size_t *consumed)
{
	uint32_t	 n;
	Qroam__Envelope	*env;

	memset(f, 0, sizeof(*f));
	if (len < FRAME_HDRLEN)
		return FRAME_NEED_MORE;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	if (n > max)
		return FRAME_TOO_BIG;
	if (n == 0)
		return FRAME_MALFORMED;
	if (len - FRAME_HDRLEN < n)
		return FRAME_NEED_MORE;
	env = qroam__envelope__unpack(NULL, n, buf + FRAME_HDRLEN);
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
	*consumed = FRAME_HDRLEN + n;
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
frame_encode(uint32_t type, uint64_t request_id, const ProtobufCMessage *msg,
    size_t max, uint8_t **out, size_t *outlen)
{
	Qroam__Envelope	 env = QROAM__ENVELOPE__INIT;
	uint8_t		*pl = NULL, *buf;
	size_t		 pllen = 0, n;

	env.version = FRAME_VERSION;
	env.type = type;
	if (request_id != 0) {
		env.has_request_id = 1;
		env.request_id = request_id;
	}
	if (msg != NULL) {
		pllen = protobuf_c_message_get_packed_size(msg);
		if (pllen > max || (pl = malloc(pllen ? pllen : 1)) == NULL)
			return -1;
		protobuf_c_message_pack(msg, pl);
		env.has_payload = 1;
		env.payload.data = pl;
		env.payload.len = pllen;
	}
	n = qroam__envelope__get_packed_size(&env);
	if (n > max || (buf = malloc(FRAME_HDRLEN + n)) == NULL) {
		free(pl);
		return -1;
	}
	buf[0] = n >> 24;
	buf[1] = n >> 16;
	buf[2] = n >> 8;
	buf[3] = n;
	qroam__envelope__pack(&env, buf + FRAME_HDRLEN);
	free(pl);
	*out = buf;
	*outlen = FRAME_HDRLEN + n;
	return 0;
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

const char *
frame_type_name(uint32_t type)
{
	const ProtobufCEnumValue	*v;

	v = protobuf_c_enum_descriptor_get_value(&qroam__msg_type__descriptor,
	    (int)type);
	return v ? v->name : "?";
}
