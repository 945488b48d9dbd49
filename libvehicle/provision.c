/*
 * F1 and F2 from the vehicle's side: the requests, the complete check of
 * each reply, and the store step that keeps its result (one transaction
 * each).  The blocking exchanges run a provisioning channel (provchan.c)
 * on a private event base until its one reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "crypto.h"
#include "log.h"
#include "msg.h"
#include "provchan.h"
#include "provision.h"

#define VPROV_KEYBYTES		96	/* encoded size of one ChipKey, bound */
#define VPROV_FRAME_LIMIT	(16 * 1024 * 1024)

/* One blocking exchange: the reply frame, kept past the callback. */
struct vprov_sync {
	struct vprov_req	 vs_req;
	struct event_base	*vs_base;
	int			 vs_done;
	int			 vs_rc;
	struct frame		 vs_reply;
};

/* The reply of a blocking exchange: keep a copy and stop the loop. */
static void
vprov_sync_done(struct vprov_req *r, int rc, const struct frame *f)
{
	struct vprov_sync	*vs = r->vr_arg;
	uint8_t			*buf;
	size_t			 len, used;

	vs->vs_done = 1;
	vs->vs_rc = rc;
	event_base_loopbreak(vs->vs_base);
	if (rc != 0)
		return;
	/* Re-encode to own the frame: the channel releases its own. */
	vs->vs_rc = VPROV_ERROR;
	if (frame_encode_payload(f->f_type, f->f_request_id, f->f_payload,
	    f->f_payload_len, SIZE_MAX, &buf, &len) == -1)
		return;
	if (frame_decode(buf, len, SIZE_MAX, &vs->vs_reply, &used) == FRAME_OK)
		vs->vs_rc = 0;
	free(buf);
}

/* Send msg to role over mTLS and wait for one reply frame; 0 or VPROV_*. */
static int
vprov_exchange(const struct vprov *vp, enum vprov_role role, size_t max_frame,
    uint32_t type, const ProtobufCMessage *msg, struct frame *reply)
{
	struct vprov_sync	 vs;
	struct vprov_chan	*pc;

	memset(&vs, 0, sizeof(vs));
	if ((vs.vs_base = event_base_new()) == NULL) {
		log_warnx("provision: cannot create an event base");
		return VPROV_ERROR;
	}
	if ((pc = vprov_chan_new(vs.vs_base, vp, role, max_frame, 1)) == NULL) {
		event_base_free(vs.vs_base);
		return VPROV_ERROR;
	}
	vs.vs_req.vr_done = vprov_sync_done;
	vs.vs_req.vr_arg = &vs;
	if (vprov_chan_submit(pc, &vs.vs_req, type, msg) == -1)
		vs.vs_rc = VPROV_ERROR;
	else
		while (!vs.vs_done &&
		    event_base_dispatch(vs.vs_base) == 0)
			;
	if (!vs.vs_done)
		vs.vs_rc = VPROV_ERROR;
	vprov_chan_free(pc);
	/* Let the closing connection run its course. */
	event_base_dispatch(vs.vs_base);
	event_base_free(vs.vs_base);
	if (vs.vs_rc == 0)
		*reply = vs.vs_reply;
	return vs.vs_rc;
}

/* A reply that is not the expected message: a Status code, or an error. */
static int
vprov_other_reply(const struct frame *f, const char *what)
{
	Qroam__Status	*st;
	int		 code;

	if (f->f_type != QROAM__MSG_TYPE__MT_STATUS) {
		log_warnx("provision: %s: unexpected reply %s", what,
		    frame_type_name(f->f_type));
		return VPROV_ERROR;
	}
	st = (Qroam__Status *)frame_unpack(f, &qroam__status__descriptor);
	if (st == NULL) {
		log_warnx("provision: %s: malformed Status reply", what);
		return VPROV_ERROR;
	}
	code = st->code;
	log_warnx("provision: %s refused: %s%s%s", what, msg_status_name(code),
	    st->detail ? ": " : "", st->detail ? st->detail : "");
	qroam__status__free_unpacked(st, NULL);
	return code == QROAM__STATUS_CODE__OK ? VPROV_ERROR : code;
}

size_t
vprov_fill_max_frame(const struct vprov *vp, uint32_t m)
{
	size_t	max;

	max = (size_t)(m ? m : 4096) * VPROV_KEYBYTES + 4096;
	if (max < vp->vp_max_frame)
		max = vp->vp_max_frame;
	if (max > VPROV_FRAME_LIMIT)
		max = VPROV_FRAME_LIMIT;
	return max;
}

void
vprov_fill_request(Qroam__FillRequest *req, uint32_t m)
{
	qroam__fill_request__init(req);
	if (m != 0) {
		req->has_m = 1;
		req->m = m;
	}
}

void
vprov_fill_free(Qroam__FillRecord *rec)
{
	size_t	i;

	if (rec == NULL)
		return;
	for (i = 0; i < rec->n_keys; i++)
		crypto_wipe(rec->keys[i]->key.data, rec->keys[i]->key.len);
	qroam__fill_record__free_unpacked(rec, NULL);
}

int
vprov_fill_reply(const struct frame *f, uint32_t m, Qroam__FillRecord **out)
{
	Qroam__FillRecord	*rec;

	*out = NULL;
	if (f->f_type != QROAM__MSG_TYPE__MT_FILL_REPLY)
		return vprov_other_reply(f, "fill");
	rec = (Qroam__FillRecord *)frame_unpack(f,
	    &qroam__fill_record__descriptor);
	if (rec == NULL) {
		log_warnx("provision: fill: malformed FillReply");
		return VPROV_ERROR;
	}
	if (m != 0 && rec->m != m)
		log_warnx("provision: fill: asked for %u keys, got %u", m, rec->m);
	*out = rec;
	return QROAM__STATUS_CODE__OK;
}

int
vprov_fill_store(sqlite3 *db, const Qroam__FillRecord *rec,
    struct chip_info *out)
{
	if (chip_fill(db, rec) == -1 || chip_get(db, out) != 1)
		return VPROV_ERROR;
	log_info("chip filled: chip_id %s, %u keys (k=%u, n=%u)",
	    out->ci_chip_id, out->ci_m, out->ci_k, out->ci_n);
	chip_event(db, "fill", NULL, "chip_id=%s m=%u", out->ci_chip_id,
	    out->ci_m);
	return QROAM__STATUS_CODE__OK;
}

int
vprov_fill(const struct vprov *vp, sqlite3 *db, uint32_t m,
    struct chip_info *out)
{
	Qroam__FillRequest	 req;
	Qroam__FillRecord	*rec;
	struct frame		 f;
	int			 rc;

	vprov_fill_request(&req, m);
	rc = vprov_exchange(vp, VPROV_FILLER, vprov_fill_max_frame(vp, m),
	    QROAM__MSG_TYPE__MT_FILL_REQUEST, &req.base, &f);
	if (rc != 0)
		return rc;
	rc = vprov_fill_reply(&f, m, &rec);
	frame_release(&f);
	if (rc != QROAM__STATUS_CODE__OK)
		return rc;
	rc = vprov_fill_store(db, rec, out);
	vprov_fill_free(rec);
	return rc;
}

int
vprov_register_reply(const struct frame *f, int rebind, Qroam__M1 **out)
{
	Qroam__M1	*m1;
	EVP_PKEY	*pbv;

	*out = NULL;
	if (f->f_type != QROAM__MSG_TYPE__MT_M1)
		return vprov_other_reply(f, rebind ? "re-register" : "register");
	if ((m1 = (Qroam__M1 *)frame_unpack(f, &qroam__m1__descriptor)) == NULL) {
		log_warnx("provision: register: malformed M1");
		return VPROV_ERROR;
	}
	if ((pbv = crypto_pub_from_der(m1->pbv.data, m1->pbv.len)) == NULL) {
		log_warnx("provision: register: M1 carries no usable public key");
		qroam__m1__free_unpacked(m1, NULL);
		return VPROV_ERROR;
	}
	EVP_PKEY_free(pbv);
	*out = m1;
	return QROAM__STATUS_CODE__OK;
}

int
vprov_m1_store(sqlite3 *db, const Qroam__M1 *m1, const char *vid,
    const char *chip_id, int rebind)
{
	if (chip_reg_save(db, vid, chip_id, m1) == -1)
		return VPROV_ERROR;
	log_info("registered %s with chip %s (%zu TSPs in M1)", vid, chip_id,
	    m1->n_tsps);
	chip_event(db, rebind ? "reregister" : "register", NULL,
	    "vehicle_id=%s chip_id=%s", vid, chip_id);
	return QROAM__STATUS_CODE__OK;
}

int
vprov_register(const struct vprov *vp, sqlite3 *db, const char *vid,
    int rebind)
{
	Qroam__RegisterRequest	 req = QROAM__REGISTER_REQUEST__INIT;
	struct chip_info	 ci;
	Qroam__M1		*m1;
	struct frame		 f;
	int			 rc;

	if (chip_get(db, &ci) != 1) {
		log_warnx("provision: register: the chip holds no fill");
		return VPROV_ERROR;
	}
	req.vehicle_id = (char *)vid;
	req.chip_id = ci.ci_chip_id;
	if (rebind) {
		req.has_rebind = 1;
		req.rebind = 1;
	}
	rc = vprov_exchange(vp, VPROV_REGISTRAR,
	    vp->vp_max_frame ? vp->vp_max_frame : FRAME_MAX_DEFAULT,
	    QROAM__MSG_TYPE__MT_REGISTER, &req.base, &f);
	if (rc != 0)
		return rc;
	rc = vprov_register_reply(&f, rebind, &m1);
	frame_release(&f);
	if (rc != QROAM__STATUS_CODE__OK)
		return rc;
	rc = vprov_m1_store(db, m1, vid, ci.ci_chip_id, rebind);
	qroam__m1__free_unpacked(m1, NULL);
	return rc;
}

const char *
vprov_result_name(int rc)
{
	if (rc == VPROV_NO_REPLY)
		return "NO_REPLY";
	if (rc == VPROV_ERROR)
		return "ERROR";
	return msg_status_name(rc);
}

int
vprov_reg_current(sqlite3 *db, const struct chip_info *ci, int *registered)
{
	struct chip_reg	cr;
	int		r, same;

	*registered = 0;
	if ((r = chip_reg_load(db, &cr)) == -1)
		return -1;
	if (r == 0)
		return 0;
	*registered = 1;
	same = strcmp(cr.cr_chip_id, ci->ci_chip_id) == 0;
	chip_reg_clear(&cr);
	return same;
}

int
vprov_enroll(const struct vprov *factory, const struct vprov *oper,
    sqlite3 *db, const char *vid, uint32_t m)
{
	struct chip_info	ci;
	int			rc, registered;

	if ((rc = chip_get(db, &ci)) == -1)
		return VPROV_ERROR;
	if (rc == 0) {
		log_info("the chip is empty: asking the filler for a fill");
		if ((rc = vprov_fill(factory, db, m, &ci)) != 0) {
			log_warnx("fill failed: %s", vprov_result_name(rc));
			return rc;
		}
	}
	if ((rc = vprov_reg_current(db, &ci, &registered)) != 0)
		return rc == 1 ? QROAM__STATUS_CODE__OK : VPROV_ERROR;
	if (registered) {
		if (oper == NULL) {
			log_warnx("the registration names another chip than"
			    " %s and no operator credential is configured",
			    ci.ci_chip_id);
			return QROAM__STATUS_CODE__AUTH_FAILED;
		}
		rc = vprov_register(oper, db, vid, 1);
	} else {
		log_info("registering %s with the registrar", vid);
		rc = vprov_register(factory, db, vid, 0);
	}
	if (rc != 0)
		log_warnx("registration of %s failed: %s", vid,
		    vprov_result_name(rc));
	return rc;
}

int
vprov_transient(int rc)
{
	return rc == VPROV_NO_REPLY || rc == QROAM__STATUS_CODE__UNAVAILABLE ||
	    rc == QROAM__STATUS_CODE__INTERNAL;
}

int
vprov_refill(const struct vprov *oper, sqlite3 *db, const char *vid,
    uint32_t m, enum chip_mode mode)
{
	struct chip_info	ci;
	int64_t			left;
	int			rc, registered;

	if ((left = chip_unused(db, mode)) < 0 || chip_get(db, &ci) == -1)
		return VPROV_ERROR;
	if (left == 0) {
		log_info("refill: asking the filler for a new chip");
		if ((rc = vprov_fill(oper, db, m, &ci)) != 0)
			return rc;
	}
	if ((rc = vprov_reg_current(db, &ci, &registered)) == -1)
		return VPROV_ERROR;
	if (rc == 1)
		return QROAM__STATUS_CODE__OK;
	log_info("refill: re-registering %s with chip %s", vid, ci.ci_chip_id);
	return vprov_register(oper, db, vid, registered);
}
