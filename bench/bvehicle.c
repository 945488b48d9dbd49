/*
 * The protocol steps of one benchmark vehicle over a blocking connection:
 * F3 (M4, AuthResult checked with Pbv), F4 (the next chip key destroyed
 * durably and K1 wrapped under it before M3 leaves; on HandoverReady
 * ahead of the crossing, as vehicled does), and session messages sealed
 * and opened with vehicled's own codecs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "rand.h"
#include "store.h"

#include "route.h"
#include "vmsg.h"

#include "qbench.h"

int
bveh_load(struct bveh *v, const char *store)
{
	struct chip_reg	reg;

	memset(v, 0, sizeof(*v));
	memset(&reg, 0, sizeof(reg));
	if ((v->bv_db = chip_open(store)) == NULL)
		return -1;
	if (chip_reg_load(v->bv_db, &reg) != 1) {
		fprintf(stderr, "qbench: %s holds no registration\n", store);
		bveh_close(v);
		return -1;
	}
	snprintf(v->bv_vid, sizeof(v->bv_vid), "%s", reg.cr_vid);
	snprintf(v->bv_chip, sizeof(v->bv_chip), "%s", reg.cr_chip_id);
	v->bv_pbv = crypto_pub_from_der(reg.cr_pbv, reg.cr_pbvlen);
	chip_reg_clear(&reg);
	if (v->bv_pbv == NULL) {
		fprintf(stderr, "qbench: %s: Pbv does not decode\n", store);
		bveh_close(v);
		return -1;
	}
	return 0;
}

void
bveh_close(struct bveh *v)
{
	if (v->bv_db != NULL)
		chip_close(v->bv_db);
	EVP_PKEY_free(v->bv_pbv);
	crypto_wipe(v->bv_k1, sizeof(v->bv_k1));
	crypto_wipe(v->bv_prep_k1, sizeof(v->bv_prep_k1));
	memset(v, 0, sizeof(*v));
}

int
bveh_queue_m4(struct bveh *v, struct bconn *bc, const char *tsp,
    uint64_t reqid, uint8_t nonce[MSG_AUTH_NONCELEN])
{
	Qroam__M4	m4;
	int		rc;

	if (vmsg_m4(&m4, v->bv_pbv, v->bv_vid, v->bv_chip, tsp,
	    store_now_ms(), nonce) == -1)
		return -1;
	rc = bconn_queue(bc, QROAM__MSG_TYPE__MT_M4, reqid, &m4.base);
	vmsg_m4_clear(&m4);
	return rc;
}

int
bveh_auth_ok(struct bveh *v, const struct frame *f, const char *tsp,
    const uint8_t nonce[MSG_AUTH_NONCELEN])
{
	int	code;

	return vmsg_auth_check(f, v->bv_pbv, v->bv_vid, tsp, nonce, &code) ==
	    VMSG_AUTH_OK;
}

int
bveh_auth(struct bveh *v, struct bconn *bc, const char *tsp)
{
	uint8_t		nonce[MSG_AUTH_NONCELEN];
	struct frame	f;
	int		code = -1;

	if (bveh_queue_m4(v, bc, tsp, 1, nonce) == -1 || bconn_flush(bc) == -1)
		return -1;
	if (bconn_recv(bc, &f, QB_WAIT_MS) != 1)
		return -1;
	if (vmsg_auth_check(&f, v->bv_pbv, v->bv_vid, tsp, nonce, &code) ==
	    VMSG_AUTH_OK)
		code = 0;
	frame_release(&f);
	return code;
}

int
bveh_m3_prepare(struct bveh *v, const char *tsp)
{
	struct chip_key	ck;
	double		t0;
	int		rc;

	v->bv_prep = 0;
	if (chip_draw(v->bv_db, CHIP_SEQUENTIAL, &ck) != CHIP_DRAW_OK) {
		fprintf(stderr, "qbench: %s: no chip key left\n", v->bv_vid);
		return -1;
	}
	t0 = qb_now_us();
	if (chip_destroy_key(v->bv_db, ck.ck_index) == -1) {
		chip_key_wipe(&ck);
		return -1;
	}
	v->bv_destroy_us = qb_now_us() - t0;
	qrand_bytes(v->bv_prep_k1, sizeof(v->bv_prep_k1));
	rc = vmsg_m3_wrap(&v->bv_prep_wrap, v->bv_vid, tsp, ck.ck_key,
	    v->bv_prep_k1);
	v->bv_prep_index = ck.ck_index;
	chip_key_wipe(&ck);
	if (rc == -1)
		return -1;
	snprintf(v->bv_prep_tsp, sizeof(v->bv_prep_tsp), "%s", tsp);
	v->bv_prep = 1;
	return 0;
}

/* The reply to M3: the session's first ServiceResponse, or a Status. */
static int
bveh_m3_reply(struct bveh *v, const struct frame *f, const char *tsp,
    const uint8_t k1[32])
{
	Qroam__SessionInner	*in;
	const char		*why;
	uint64_t		 rx = 0;
	int			 code, ok;

	if (f->f_type == QROAM__MSG_TYPE__MT_STATUS)
		return vmsg_status(f, &code) == 0 ? code : -1;
	if ((in = vmsg_session_in(f, k1, v->bv_vid, tsp, &rx, &why)) == NULL)
		return -1;
	ok = in->body_case == QROAM__SESSION_INNER__BODY_RESPONSE &&
	    in->response->ack_seq == 0;
	qroam__session_inner__free_unpacked(in, NULL);
	if (!ok)
		return -1;
	memcpy(v->bv_k1, k1, sizeof(v->bv_k1));
	snprintf(v->bv_tsp, sizeof(v->bv_tsp), "%s", tsp);
	v->bv_tx = 0;
	v->bv_rx = rx;
	return 0;
}

int
bveh_m3_send(struct bveh *v, struct bconn *bc, const char *tsp)
{
	Qroam__M3		 m3;
	Qroam__Telemetry	 d1;
	struct route_pos	 rp;
	int			 rc;

	if ((!v->bv_prep || strcmp(v->bv_prep_tsp, tsp) != 0) &&
	    bveh_m3_prepare(v, tsp) == -1)
		return -1;
	v->bv_prep = 0;
	memset(&rp, 0, sizeof(rp));
	vmsg_telemetry(&d1, &rp, store_now_ms());
	if (vmsg_m3_wrapped(&m3, v->bv_vid, tsp, v->bv_prep_index, NULL,
	    CHIP_SEQUENTIAL, v->bv_prep_k1, &v->bv_prep_wrap, &d1) == -1)
		return -1;
	rc = bconn_send(bc, QROAM__MSG_TYPE__MT_M3, 1, &m3.base);
	msg_m3_clear(&m3);
	return rc;
}

int
bveh_m3_recv(struct bveh *v, struct bconn *bc, const char *tsp)
{
	struct frame	f;
	int		rc;

	if ((rc = bconn_recv(bc, &f, QB_WAIT_MS)) == 1) {
		rc = bveh_m3_reply(v, &f, tsp, v->bv_prep_k1);
		frame_release(&f);
	} else
		rc = -1;
	crypto_wipe(v->bv_prep_k1, sizeof(v->bv_prep_k1));
	return rc;
}

int
bveh_m3(struct bveh *v, struct bconn *bc, const char *tsp)
{
	if (bveh_m3_send(v, bc, tsp) == -1) {
		crypto_wipe(v->bv_prep_k1, sizeof(v->bv_prep_k1));
		return -1;
	}
	return bveh_m3_recv(v, bc, tsp);
}

/* Queue inner as the next SessionMsg of the session. */
static int
bveh_queue_inner(struct bveh *v, struct bconn *bc,
    const Qroam__SessionInner *in)
{
	Qroam__SessionMsg	sm;
	int			rc;

	if (vmsg_session_out(&sm, v->bv_k1, v->bv_vid, v->bv_tsp, v->bv_tx + 1,
	    in) == -1)
		return -1;
	rc = bconn_queue(bc, QROAM__MSG_TYPE__MT_SESSION_MSG, v->bv_tx + 1,
	    &sm.base);
	free(sm.ct.data);
	if (rc == 0)
		v->bv_tx++;
	return rc;
}

int
bveh_queue_telemetry(struct bveh *v, struct bconn *bc, double lat, double lon,
    double heading, double speed)
{
	Qroam__SessionInner	in = QROAM__SESSION_INNER__INIT;
	Qroam__Telemetry	t;
	struct route_pos	rp;

	memset(&rp, 0, sizeof(rp));
	rp.rp_point.gp_lat = lat;
	rp.rp_point.gp_lon = lon;
	rp.rp_heading = heading;
	rp.rp_speed = speed;
	vmsg_telemetry(&t, &rp, store_now_ms());
	in.body_case = QROAM__SESSION_INNER__BODY_TELEMETRY;
	in.telemetry = &t;
	return bveh_queue_inner(v, bc, &in);
}

int
bveh_send_inner(struct bveh *v, struct bconn *bc, const Qroam__SessionInner *in)
{
	if (bveh_queue_inner(v, bc, in) == -1)
		return -1;
	return bconn_flush(bc);
}

Qroam__SessionInner *
bveh_recv_inner(struct bveh *v, struct bconn *bc, int timeout_ms, int *status)
{
	Qroam__SessionInner	*in = NULL;
	struct frame		 f;
	const char		*why;
	int			 r, code;

	*status = -1;
	if ((r = bconn_recv(bc, &f, timeout_ms)) != 1) {
		*status = r == 0 ? QB_TIMEOUT : -1;
		return NULL;
	}
	if (f.f_type == QROAM__MSG_TYPE__MT_STATUS)
		*status = vmsg_status(&f, &code) == 0 ? code : -1;
	else if ((in = vmsg_session_in(&f, v->bv_k1, v->bv_vid, v->bv_tsp,
	    &v->bv_rx, &why)) == NULL)
		fprintf(stderr, "qbench: %s: reply from %s: %s\n", v->bv_vid,
		    v->bv_tsp, why);
	frame_release(&f);
	return in;
}
