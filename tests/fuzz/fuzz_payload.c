/*
 * Each Envelope payload as the daemons take it: frame_unpack with the
 * type's descriptor, then the checks the receiving daemon runs on the
 * message before acting on it (all callable without a socket or store).
 * Input: byte 0 picks the MsgType (an index into fuzz_payload_types),
 * the rest is the payload.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "frame.h"
#include "ids.h"
#include "keyseq.h"
#include "msg.h"
#include "fuzz.h"
#include "../../libvehicle/chip.h"
#include "../../libvehicle/provision.h"
#include "../../libvehicle/vmsg.h"
#include "../../tspd/handover.h"
#include "../../tspd/tspd.h"

static EVP_PKEY	*pbv;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pbv = fuzz_rsa();
	return 0;
}

/* tspd F1 (provision_fill) and the vehicle's fill reply. */
static void
fuzz_fill(const struct frame *f)
{
	Qroam__FillRecord	*fr;
	const char		*why;

	if (f->f_type == QROAM__MSG_TYPE__MT_FILL_REPLY) {
		if (vprov_fill_reply(f, FUZZ_FILL_M, &fr) ==
		    QROAM__STATUS_CODE__OK && fr != NULL)
			(void)keyseq_validate(fr, &why);
		if (fr != NULL)
			qroam__fill_record__free_unpacked(fr, NULL);
		return;
	}
	fr = (Qroam__FillRecord *)frame_unpack(f,
	    &qroam__fill_record__descriptor);
	if (fr == NULL)
		return;
	if (id_valid_hex(fr->chip_id, CHIP_ID_LEN))
		(void)keyseq_validate(fr, &why);
	qroam__fill_record__free_unpacked(fr, NULL);
}

/* The vehicle's M1 (vprov_register_reply, then chip_m1_check). */
static void
fuzz_m1(const struct frame *f)
{
	Qroam__M1	*m1;

	if (vprov_register_reply(f, 0, &m1) == QROAM__STATUS_CODE__OK &&
	    m1 != NULL)
		(void)chip_m1_check(FUZZ_VID, FUZZ_CHIP, m1);
	if (m1 != NULL)
		qroam__m1__free_unpacked(m1, NULL);
}

/* tspd F2 (provision_m2). */
static void
fuzz_m2(const struct frame *f)
{
	Qroam__M2	*m2;

	if ((m2 = (Qroam__M2 *)frame_unpack(f, &qroam__m2__descriptor)) == NULL)
		return;
	(void)tspd_provision_m2_check(m2);
	qroam__m2__free_unpacked(m2, NULL);
}

/* tspd F4 (session.c): M3 under a pre-shared key of the fill. */
static void
fuzz_m3(const struct frame *f)
{
	Qroam__M3		*m3;
	Qroam__Telemetry	*d1;
	uint8_t			 pfk[32], k1[32];

	if ((m3 = (Qroam__M3 *)frame_unpack(f, &qroam__m3__descriptor)) == NULL)
		return;
	fuzz_key(FUZZ_K_PFK, pfk);
	if (msg_m3_open(m3, FUZZ_TSP, pfk, k1, &d1) == 0) {
		(void)tspd_telemetry_check(d1);
		qroam__telemetry__free_unpacked(d1, NULL);
	}
	qroam__m3__free_unpacked(m3, NULL);
}

/* The vehicle's session traffic (vmsg_session_in). */
static void
fuzz_session(const struct frame *f)
{
	Qroam__SessionInner	*in;
	uint8_t			 k1[32];
	uint64_t		 rx = 0;
	const char		*why;

	fuzz_key(FUZZ_K_K1, k1);
	in = vmsg_session_in(f, k1, FUZZ_VID, FUZZ_TSP, &rx, &why);
	if (in != NULL)
		qroam__session_inner__free_unpacked(in, NULL);
}

/* schedd's A1/A2/A3 field checks and tspd's KeyReply check. */
static void
fuzz_sched(const struct frame *f)
{
	Qroam__KeyRequest	*kq;
	Qroam__AccessRequest	*ar;
	Qroam__KeyReply		*kr;

	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_KEY_REQUEST:
		if ((kq = (Qroam__KeyRequest *)frame_unpack(f,
		    &qroam__key_request__descriptor)) == NULL)
			return;
		(void)(kq->type == 1 && id_valid_hex(kq->handover_id, 32) &&
		    id_valid_name(kq->from) &&
		    (kq->initiator == NULL || id_valid_name(kq->initiator)));
		qroam__key_request__free_unpacked(kq, NULL);
		break;
	case QROAM__MSG_TYPE__MT_ACCESS_REQUEST:
		if ((ar = (Qroam__AccessRequest *)frame_unpack(f,
		    &qroam__access_request__descriptor)) == NULL)
			return;
		(void)(ar->type == 2 && id_valid_hex(ar->handover_id, 32) &&
		    id_valid_name(ar->initiator) && id_valid_name(ar->target));
		qroam__access_request__free_unpacked(ar, NULL);
		break;
	default:
		if ((kr = (Qroam__KeyReply *)frame_unpack(f,
		    &qroam__key_reply__descriptor)) == NULL)
			return;
		(void)tspd_handover_key_reply_check(kr, FUZZ_HID);
		qroam__key_reply__free_unpacked(kr, NULL);
		break;
	}
}

/* tspd's handover messages: M7 (TSPA), M8 (TSPB), M8Ack (TSPA). */
static void
fuzz_handover(const struct frame *f)
{
	static struct tspdb_origin origin[TSPDB_RD1_HISTORY];
	Qroam__M7	*m7;
	Qroam__M7Inner	*in;
	Qroam__M8	*m8;
	Qroam__RD1	*rd1;
	Qroam__M8Ack	*ack;
	uint8_t		 key[32];

	if (f->f_type == QROAM__MSG_TYPE__MT_M7) {
		fuzz_key(FUZZ_K_CK1, key);
		if ((m7 = (Qroam__M7 *)frame_unpack(f,
		    &qroam__m7__descriptor)) == NULL)
			return;
		if ((in = tspd_m7_open(key, FUZZ_TSP, m7)) != NULL)
			tspd_m7_inner_free(in);
		qroam__m7__free_unpacked(m7, NULL);
		return;
	}
	fuzz_key(FUZZ_K_CK2, key);
	if (f->f_type == QROAM__MSG_TYPE__MT_M8) {
		if ((m8 = (Qroam__M8 *)frame_unpack(f,
		    &qroam__m8__descriptor)) == NULL)
			return;
		if ((rd1 = tspd_m8_open(key, m8)) != NULL) {
			(void)tspd_rd1_check(rd1, FUZZ_CHIP, FUZZ_FILL_M,
			    m8->initiator, origin);
			qroam__rd1__free_unpacked(rd1, NULL);
		}
		qroam__m8__free_unpacked(m8, NULL);
		return;
	}
	if ((ack = (Qroam__M8Ack *)frame_unpack(f,
	    &qroam__m8_ack__descriptor)) == NULL)
		return;
	(void)tspd_m8ack_check(key, FUZZ_TSP, FUZZ_PEER, FUZZ_HID, ack);
	qroam__m8_ack__free_unpacked(ack, NULL);
}

/* F3 on both sides: tspd's M4 and the vehicle's AuthResult. */
static void
fuzz_auth(const struct frame *f)
{
	static const uint8_t	 nonce[MSG_AUTH_NONCELEN] = { 1, 2, 3 };
	Qroam__M4		*m4;
	Qroam__AuthInner	*in;
	const char		*why;
	int			 code;

	if (f->f_type == QROAM__MSG_TYPE__MT_AUTH_RESULT) {
		(void)vmsg_auth_check(f, pbv, FUZZ_VID, FUZZ_TSP, nonce, &code);
		return;
	}
	if ((m4 = (Qroam__M4 *)frame_unpack(f, &qroam__m4__descriptor)) == NULL)
		return;
	if (id_valid_vin(m4->vehicle_id) &&
	    (in = msg_m4_open(pbv, m4->ct.data, m4->ct.len, &why)) != NULL)
		qroam__auth_inner__free_unpacked(in, NULL);
	qroam__m4__free_unpacked(m4, NULL);
}

/* What only unpacks (and the vehicle's Status reader). */
static void
fuzz_other(const struct frame *f)
{
	ProtobufCMessage	*m;
	const ProtobufCMessageDescriptor *d;
	int			 code;

	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_STATUS:
		if (vmsg_status(f, &code) == 0)
			(void)msg_status_name(code);
		return;
	case QROAM__MSG_TYPE__MT_FILL_REQUEST:
		d = &qroam__fill_request__descriptor;
		break;
	default:
		d = &qroam__register_request__descriptor;
		break;
	}
	if ((m = frame_unpack(f, d)) != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct frame	 f;

	if (len < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	f.f_type = fuzz_payload_types[data[0] % FUZZ_NTYPES];
	f.f_payload = len > 1 ? data + 1 : NULL;
	f.f_payload_len = len - 1;
	fuzz_quiet(1);
	switch (f.f_type) {
	case QROAM__MSG_TYPE__MT_FILL_REPLY:
	case QROAM__MSG_TYPE__MT_FILL_RECORD:
		fuzz_fill(&f);
		break;
	case QROAM__MSG_TYPE__MT_M1:
		fuzz_m1(&f);
		break;
	case QROAM__MSG_TYPE__MT_M2:
		fuzz_m2(&f);
		break;
	case QROAM__MSG_TYPE__MT_M3:
		fuzz_m3(&f);
		break;
	case QROAM__MSG_TYPE__MT_SESSION_MSG:
		fuzz_session(&f);
		break;
	case QROAM__MSG_TYPE__MT_KEY_REQUEST:
	case QROAM__MSG_TYPE__MT_ACCESS_REQUEST:
	case QROAM__MSG_TYPE__MT_KEY_REPLY:
		fuzz_sched(&f);
		break;
	case QROAM__MSG_TYPE__MT_M7:
	case QROAM__MSG_TYPE__MT_M8:
	case QROAM__MSG_TYPE__MT_M8_ACK:
		fuzz_handover(&f);
		break;
	case QROAM__MSG_TYPE__MT_M4:
	case QROAM__MSG_TYPE__MT_AUTH_RESULT:
		fuzz_auth(&f);
		break;
	default:
		fuzz_other(&f);
		break;
	}
	fuzz_quiet(0);
	return 0;
}
