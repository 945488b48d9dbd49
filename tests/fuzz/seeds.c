/*
 * fuzz-seeds DIR: write the seed corpora of the fuzz targets into
 * DIR/<target>/, made by the project's own encoders (frame_encode, the
 * msg_* and tspd_* sealers, fill_generate, keysrc_json_request) and from
 * the example configurations of deploy/examples/ (read from the current
 * directory, the top of the tree).  Run by `make fuzz-build`.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "frame.h"
#include "keysrc_json.h"
#include "msg.h"
#include "fuzz.h"
#include "../../fillerd/fill.h"
#include "../../tspd/handover.h"

static const char	*top;
static int		 nseed;

/* DIR/target/nnn: one seed of tag (its first byte) then len bytes. */
static void
seed(const char *target, int tag, const void *p, size_t len)
{
	char	 path[512];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", top, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%03d", top, target, nseed++);
	if ((fp = fopen(path, "w")) == NULL)
		err(1, "%s", path);
	if (tag >= 0)
		fputc(tag, fp);
	if (fwrite(p, 1, len, fp) != len || fclose(fp) != 0)
		err(1, "%s", path);
}

/* Seed msg packed, with tag first. */
static void
seed_msg(const char *target, int tag, const ProtobufCMessage *m)
{
	size_t	 len = protobuf_c_message_get_packed_size(m);
	uint8_t	*buf = malloc(len + 1);

	if (buf == NULL)
		err(1, NULL);
	protobuf_c_message_pack(m, buf);
	seed(target, tag, buf, len);
	free(buf);
}

/* The index of type in fuzz_payload_types. */
static int
payload_tag(uint32_t type)
{
	int	i;

	for (i = 0; i < FUZZ_NTYPES; i++)
		if (fuzz_payload_types[i] == type)
			return i;
	errx(1, "type %u not fuzzed", type);
}

/* A payload seed, and the same message framed for fuzz_frame. */
static void
seed_payload(uint32_t type, const ProtobufCMessage *m)
{
	uint8_t	*buf;
	size_t	 len;

	seed_msg("payload", payload_tag(type), m);
	if (frame_encode(type, 7, m, FRAME_MAX_DEFAULT, &buf, &len) == -1)
		errx(1, "frame_encode");
	seed("frame", -1, buf, len);
	free(buf);
}

static Qroam__Telemetry
telemetry(uint64_t ms)
{
	Qroam__Telemetry	t = QROAM__TELEMETRY__INIT;

	t.unix_ms = ms;
	t.lat = 48.137;
	t.lon = 11.575;
	t.speed = 13.9;
	t.heading = 90.0;
	t.has_fuel = 1;
	t.fuel = 0.5;
	return t;
}

/* F1, F2 and the registrar's messages. */
static void
seeds_provision(EVP_PKEY *prv)
{
	Qroam__FillRequest	 fq = QROAM__FILL_REQUEST__INIT;
	Qroam__FillRecord	*fr;
	Qroam__RegisterRequest	 rr = QROAM__REGISTER_REQUEST__INIT;
	Qroam__M1		 m1 = QROAM__M1__INIT;
	Qroam__TspInfo		 ti = QROAM__TSP_INFO__INIT, *tis[1] = { &ti };
	Qroam__Point		 pt[3] = { QROAM__POINT__INIT, QROAM__POINT__INIT,
				    QROAM__POINT__INIT }, *pts[3];
	Qroam__M2		 m2 = QROAM__M2__INIT;
	const char		*why;
	size_t			 i;

	fq.has_m = 1;
	fq.m = 8;
	seed_payload(QROAM__MSG_TYPE__MT_FILL_REQUEST, &fq.base);
	if (fill_generate(8, 10, 6, &fr, &why) == -1)
		errx(1, "fill_generate: %s", why);
	seed_payload(QROAM__MSG_TYPE__MT_FILL_RECORD, &fr->base);
	seed_payload(QROAM__MSG_TYPE__MT_FILL_REPLY, &fr->base);
	fill_record_free(fr);
	rr.vehicle_id = FUZZ_VID;
	rr.chip_id = FUZZ_CHIP;
	seed_payload(QROAM__MSG_TYPE__MT_REGISTER, &rr.base);
	if (crypto_pub_to_der(prv, &m1.pbv.data, &m1.pbv.len) == -1)
		errx(1, "pub_to_der");
	for (i = 0; i < 3; i++) {
		pt[i].lat = 48.0 + (double)(i == 1);
		pt[i].lon = 11.0 + (double)(i == 2);
		pts[i] = &pt[i];
	}
	ti.tsp_id = FUZZ_TSP;
	ti.host = "127.0.0.1";
	ti.port = 7001;
	ti.n_region = 3;
	ti.region = pts;
	m1.n_tsps = 1;
	m1.tsps = tis;
	seed_payload(QROAM__MSG_TYPE__MT_M1, &m1.base);
	free(m1.pbv.data);
	m2.vehicle_id = FUZZ_VID;
	m2.chip_id = FUZZ_CHIP;
	m2.epoch = 1;
	if (crypto_priv_to_der(prv, &m2.prv.data, &m2.prv.len) == -1)
		errx(1, "priv_to_der");
	seed_payload(QROAM__MSG_TYPE__MT_M2, &m2.base);
	crypto_wipe(m2.prv.data, m2.prv.len);
	free(m2.prv.data);
}

/* F3 and F4 as a vehicle sends them, and tspd's answer. */
static void
seeds_auth(EVP_PKEY *prv)
{
	static const uint8_t	 nonce[MSG_AUTH_NONCELEN] = { 1, 2, 3 };
	Qroam__M4		 m4 = QROAM__M4__INIT;
	Qroam__AuthResult	 ar = QROAM__AUTH_RESULT__INIT;
	Qroam__AuthInner	 ai = QROAM__AUTH_INNER__INIT;
	Qroam__M3		 m3 = QROAM__M3__INIT;
	Qroam__Telemetry	 t = telemetry(1700000000000);
	uint8_t			 pfk[32], k1[32];
	char			 text[MSG_AAD_MAX];

	m4.vehicle_id = FUZZ_VID;
	if (msg_m4_seal(prv, FUZZ_CHIP, FUZZ_TSP, nonce, 1700000000000,
	    &m4.ct.data, &m4.ct.len) == -1)
		errx(1, "msg_m4_seal");
	seed_payload(QROAM__MSG_TYPE__MT_M4, &m4.base);
	free(m4.ct.data);
	ai.chip_id = FUZZ_CHIP;
	ai.tsp_id = FUZZ_TSP;
	ai.nonce.data = (uint8_t *)nonce;
	ai.nonce.len = sizeof(nonce);
	ai.unix_ms = 1700000000000;
	seed_msg("inner", 3, &ai.base);
	ar.code = QROAM__STATUS_CODE__OK;
	ar.has_nonce = ar.has_sig = 1;
	ar.nonce.data = (uint8_t *)nonce;
	ar.nonce.len = sizeof(nonce);
	if (msg_auth_text(text, sizeof(text), FUZZ_VID, FUZZ_TSP, nonce) == -1 ||
	    crypto_pss_sign(prv, text, strlen(text), &ar.sig.data,
	    &ar.sig.len) == -1)
		errx(1, "AuthResult");
	seed_payload(QROAM__MSG_TYPE__MT_AUTH_RESULT, &ar.base);
	free(ar.sig.data);
	fuzz_key(FUZZ_K_PFK, pfk);
	fuzz_key(FUZZ_K_K1, k1);
	m3.vehicle_id = FUZZ_VID;
	m3.has_key_index = 1;
	m3.key_index = 3;
	if (msg_m3_seal(&m3, FUZZ_TSP, pfk, k1, &t) == -1)
		errx(1, "msg_m3_seal");
	seed_payload(QROAM__MSG_TYPE__MT_M3, &m3.base);
	m3.vehicle_id = NULL;
	msg_m3_clear(&m3);
	seed_msg("inner", 2, &t.base);
}

/* F5: session traffic both ways, sealed and as plaintext. */
static void
seeds_session(void)
{
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT;
	Qroam__SessionMsg	 sm = QROAM__SESSION_MSG__INIT;
	Qroam__Telemetry	 t = telemetry(1700000001000);
	Qroam__ServiceResponse	 sr = QROAM__SERVICE_RESPONSE__INIT;
	Qroam__Bye		 bye = QROAM__BYE__INIT;
	Qroam__M5		 m5 = QROAM__M5__INIT;
	Qroam__M6		 m6 = QROAM__M6__INIT;
	Qroam__HandoverReady	 hr = QROAM__HANDOVER_READY__INIT;
	Qroam__Point		 p = QROAM__POINT__INIT;
	uint8_t			 k1[32];

	fuzz_key(FUZZ_K_K1, k1);
	in.body_case = QROAM__SESSION_INNER__BODY_TELEMETRY;
	in.telemetry = &t;
	seed_msg("inner", 0, &in.base);
	in.body_case = QROAM__SESSION_INNER__BODY_BYE;
	bye.reason = "trip ended";
	in.bye = &bye;
	seed_msg("inner", 0, &in.base);
	in.body_case = QROAM__SESSION_INNER__BODY_M6;
	m6.continue_service = 1;
	m6.next_tsp_id = FUZZ_PEER;
	in.m6 = &m6;
	seed_msg("inner", 0, &in.base);
	in.body_case = QROAM__SESSION_INNER__BODY_M5;
	p.lat = 48.2;
	p.lon = 11.6;
	m5.projected = &p;
	in.m5 = &m5;
	seed_msg("inner", 1, &in.base);
	in.body_case = QROAM__SESSION_INNER__BODY_READY;
	hr.tsp_id = FUZZ_PEER;
	hr.host = "127.0.0.1";
	hr.port = 7002;
	in.ready = &hr;
	seed_msg("inner", 1, &in.base);
	in.body_case = QROAM__SESSION_INNER__BODY_RESPONSE;
	sr.ack_seq = 1;
	sr.has_stored_seq = 1;
	sr.stored_seq = 1;
	sr.region = FUZZ_TSP;
	in.response = &sr;
	seed_msg("inner", 1, &in.base);
	if (msg_session_seal(k1, FUZZ_VID, FUZZ_TSP, MSG_DIR_C2V, 1, &in,
	    &sm) == -1)
		errx(1, "msg_session_seal");
	seed_payload(QROAM__MSG_TYPE__MT_SESSION_MSG, &sm.base);
	free(sm.ct.data);
}

/* A1/A2/A3, the scheduler's answer and a Status. */
static void
seeds_sched(void)
{
	Qroam__KeyRequest	 kq = QROAM__KEY_REQUEST__INIT;
	Qroam__AccessRequest	 aq = QROAM__ACCESS_REQUEST__INIT;
	Qroam__KeyReply		 kr = QROAM__KEY_REPLY__INIT;
	Qroam__Status		 st = QROAM__STATUS__INIT;

	kq.type = 1;
	kq.from = FUZZ_TSP;
	kq.handover_id = FUZZ_HID;
	seed_payload(QROAM__MSG_TYPE__MT_KEY_REQUEST, &kq.base);
	kq.from = FUZZ_PEER;
	kq.initiator = FUZZ_TSP;
	seed_payload(QROAM__MSG_TYPE__MT_KEY_REQUEST, &kq.base);
	aq.type = 2;
	aq.target = FUZZ_PEER;
	aq.initiator = FUZZ_TSP;
	aq.handover_id = FUZZ_HID;
	seed_payload(QROAM__MSG_TYPE__MT_ACCESS_REQUEST, &aq.base);
	kr.handover_id = FUZZ_HID;
	kr.key_id = "6f1c3a52-7d2e-4b8a-9c01-2f3e4d5a6b7c";
	kr.master_sae = "sched";
	seed_payload(QROAM__MSG_TYPE__MT_KEY_REPLY, &kr.base);
	st.code = QROAM__STATUS_CODE__KEY_EXHAUSTED;
	st.detail = "no key";
	seed_payload(QROAM__MSG_TYPE__MT_STATUS, &st.base);
}

/* F6: M7 under CK1, as schedd seals it. */
static void
seeds_m7(void)
{
	Qroam__M7Inner		 mi = QROAM__M7_INNER__INIT;
	Qroam__M7		 m7 = QROAM__M7__INIT;
	uint8_t			 ck1[32], ck2[32], *pt;
	char			 aad[MSG_AAD_MAX];
	size_t			 len;

	fuzz_key(FUZZ_K_CK1, ck1);
	fuzz_key(FUZZ_K_CK2, ck2);
	mi.ck2.data = ck2;
	mi.ck2.len = sizeof(ck2);
	mi.tsp_id = FUZZ_PEER;
	mi.host = "127.0.0.1";
	mi.port = 7102;
	mi.expiry_ms = 1700000009000;
	seed_msg("inner", 4, &mi.base);
	len = qroam__m7_inner__get_packed_size(&mi);
	if ((pt = malloc(len)) == NULL ||
	    (m7.ct.data = malloc(len + CRYPTO_TAGLEN)) == NULL ||
	    (m7.nonce.data = calloc(1, CRYPTO_NONCELEN)) == NULL)
		err(1, NULL);
	qroam__m7_inner__pack(&mi, pt);
	m7.handover_id = FUZZ_HID;
	m7.nonce.len = CRYPTO_NONCELEN;
	m7.ct.len = len + CRYPTO_TAGLEN;
	if (msg_aad(aad, sizeof(aad), "M7", FUZZ_TSP, FUZZ_HID,
	    (char *)NULL) == -1 ||
	    crypto_aead_seal(ck1, m7.nonce.data, aad, pt, len, m7.ct.data) == -1)
		errx(1, "M7");
	seed_payload(QROAM__MSG_TYPE__MT_M7, &m7.base);
	free(pt);
	free(m7.ct.data);
	free(m7.nonce.data);
}

/* F7: RD1 in M8 and the M8Ack under CK2. */
static void
seeds_m8(void)
{
	static const struct tspdb_origin origin[2] = {
		{ FUZZ_TSP, 11 }, { FUZZ_PEER, 4 } };
	Qroam__RD1		 rd1 = QROAM__RD1__INIT;
	Qroam__M8		 m8 = QROAM__M8__INIT;
	Qroam__M8Ack		 ack = QROAM__M8_ACK__INIT;
	Qroam__Telemetry	 t[2] = { telemetry(1700000002000),
				    telemetry(1700000003000) }, *th[2];
	uint8_t			 ck2[32];
	uint32_t		 used[2] = { 9, 12 };

	fuzz_key(FUZZ_K_CK2, ck2);
	th[0] = &t[0];
	th[1] = &t[1];
	rd1.vehicle_id = FUZZ_VID;
	rd1.chip_id = FUZZ_CHIP;
	rd1.n_history = 2;
	rd1.history = th;
	rd1.authed_ms = 1700000000000;
	rd1.sequential = 1;
	rd1.next_index = 8;
	rd1.n_used = 2;
	rd1.used = used;
	if ((rd1.service = tspd_origins_encode(origin, 2)) == NULL)
		errx(1, "tspd_origins_encode");
	seed_msg("inner", 5, &rd1.base);
	m8.initiator = FUZZ_TSP;
	m8.target = FUZZ_PEER;
	m8.handover_id = FUZZ_HID;
	if (tspd_m8_seal(ck2, &rd1, &m8) == -1)
		errx(1, "tspd_m8_seal");
	seed_payload(QROAM__MSG_TYPE__MT_M8, &m8.base);
	free(rd1.service);
	free(m8.nonce.data);
	free(m8.ct.data);
	if (tspd_m8ack_seal(ck2, FUZZ_TSP, FUZZ_PEER, FUZZ_HID, &ack) == -1)
		errx(1, "tspd_m8ack_seal");
	ack.handover_id = FUZZ_HID;
	seed_payload(QROAM__MSG_TYPE__MT_M8_ACK, &ack.base);
	free(ack.nonce.data);
	free(ack.ct.data);
	seed("inner", 6, FUZZ_HID, strlen(FUZZ_HID));
}

/* The example configurations, each for its parser (fuzz_conf's tags). */
static void
seeds_conf(void)
{
	static const struct { const char *file; int tag; } ex[] = {
		{ "fillerd.conf", 0 }, { "qkdd.conf", 1 },
		{ "registrard.conf", 2 }, { "schedd.conf", 3 },
		{ "tspd-tsp-a.conf", 4 }, { "tspd-tsp-b.conf", 4 },
		{ "vehicled-fleet-a.conf", 5 }, { "topology.conf", 6 },
	};
	char	 path[256], buf[16384];
	size_t	 i, len;
	FILE	*fp;

	for (i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		snprintf(path, sizeof(path), "deploy/examples/%s", ex[i].file);
		if ((fp = fopen(path, "r")) == NULL)
			err(1, "%s", path);
		len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		seed("conf", ex[i].tag, buf, len);
	}
}

/* ETSI GS QKD 014: the KME's answers and the key source's requests. */
static void
seeds_etsi014(void)
{
	static const char *const ids[2] = {
		"6f1c3a52-7d2e-4b8a-9c01-2f3e4d5a6b7c",
		"0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9" };
	static const char answer[] = "{\"keys\":["
	    "{\"key_ID\":\"6f1c3a52-7d2e-4b8a-9c01-2f3e4d5a6b7c\","
	    "\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"},"
	    "{\"key_ID\":\"0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9\","
	    "\"key\":\"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\"}]}";
	static const char refused[] = "{\"message\":\"no key\"}";
	static const char query[] = "number=2&size=256";
	char	*body;

	seed("keysrc", 1, answer, strlen(answer));	/* enc_keys of 2 */
	seed("keysrc", 5, answer, strlen(answer));	/* dec_keys of 2 */
	seed("keysrc", 0x80, refused, strlen(refused));
	seed("kme", 0, query, strlen(query));
	if ((body = keysrc_json_request(2, NULL)) == NULL)
		errx(1, "keysrc_json_request");
	seed("kme", 1, body, strlen(body));
	free(body);
	if ((body = keysrc_json_request(2, ids)) == NULL)
		errx(1, "keysrc_json_request");
	seed("kme", 2, body, strlen(body));
	free(body);
}

int
main(int argc, char *argv[])
{
	EVP_PKEY	*prv;

	if (argc != 2)
		errx(2, "usage: fuzz-seeds DIR");
	top = argv[1];
	if (mkdir(top, 0755) == -1)
		err(1, "%s", top);
	prv = fuzz_rsa();
	seeds_provision(prv);
	seeds_auth(prv);
	seeds_session();
	seeds_sched();
	seeds_m7();
	seeds_m8();
	seeds_conf();
	seeds_etsi014();
	return 0;
}
