/*
 * F1 and F2 from the vehicle's side.  Each exchange opens one mutual-TLS
 * connection on a private event base (so it can run while the main loop
 * is inside a callback), sends one request, waits for one reply, checks
 * it completely and stores the result in one transaction.
 */
#include <stdio.h>
#include <string.h>
#include <event2/event.h>

#include "conn.h"
#include "crypto.h"
#include "log.h"
#include "msg.h"
#include "provision.h"
#include "tls.h"

#define VPROV_REQID		1
#define VPROV_KEYBYTES		96	/* encoded size of one ChipKey, bound */
#define VPROV_FRAME_LIMIT	(16 * 1024 * 1024)

/* Send msg to ep over mTLS and wait for one reply frame; 0 or VPROV_*. */
static int
vprov_exchange(const struct vprov *vp, const struct endpoint *ep,
    const char *role, size_t max_frame, uint32_t type,
    const ProtobufCMessage *msg, struct frame *reply)
{
	struct event_base	*base;
	struct conn_opts	 opts;
	struct conn		*c;
	SSL_CTX			*ctx;
	char			 err[256];
	int			 rc = VPROV_NO_REPLY;

	if (ep->ep_port == 0) {
		log_warnx("provision: no %s endpoint in the topology", role);
		return VPROV_ERROR;
	}
	if (vp->vp_ca == NULL || vp->vp_cert == NULL || vp->vp_key == NULL) {
		log_warnx("provision: no credential to reach the %s", role);
		return VPROV_ERROR;
	}
	if ((ctx = tls_client_ctx(vp->vp_ca, vp->vp_cert, vp->vp_key)) == NULL) {
		log_warnx("provision: cannot load the TLS credential %s",
		    vp->vp_cert);
		return VPROV_ERROR;
	}
	if ((base = event_base_new()) == NULL) {
		SSL_CTX_free(ctx);
		log_warnx("provision: cannot create an event base");
		return VPROV_ERROR;
	}
	memset(&opts, 0, sizeof(opts));
	opts.co_tls = ctx;
	opts.co_max_frame = max_frame;
	opts.co_connect_ms = vp->vp_timeout_ms;
	opts.co_peer_role = role;
	c = conn_open_sync(base, ep->ep_host, ep->ep_port, &opts,
	    vp->vp_timeout_ms, err, sizeof(err));
	if (c == NULL)
		log_warnx("provision: %s %s:%u: %s", role, ep->ep_host,
		    ep->ep_port, err);
	else if (conn_send(c, type, VPROV_REQID, msg) == -1)
		log_warnx("provision: cannot send %s to the %s",
		    frame_type_name(type), role);
	else if (conn_recv_sync(c, reply, vp->vp_timeout_ms) == -1)
		log_warnx("provision: no reply from the %s %s:%u within %d ms",
		    role, ep->ep_host, ep->ep_port, vp->vp_timeout_ms);
	else
		rc = 0;
	if (c != NULL)
		conn_free_sync(c);
	/* Let deferred bufferevent callbacks drop their references. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	SSL_CTX_free(ctx);
	return rc;
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

int
vprov_fill(const struct vprov *vp, sqlite3 *db, uint32_t m,
    struct chip_info *out)
{
	Qroam__FillRequest	 req = QROAM__FILL_REQUEST__INIT;
	Qroam__FillRecord	*rec;
	struct frame		 f;
	size_t			 max;
	int			 rc;

	if (m != 0) {
		req.has_m = 1;
		req.m = m;
	}
	max = (size_t)(m ? m : 4096) * VPROV_KEYBYTES + 4096;
	if (max < vp->vp_max_frame)
		max = vp->vp_max_frame;
	if (max > VPROV_FRAME_LIMIT)
		max = VPROV_FRAME_LIMIT;
	rc = vprov_exchange(vp, &vp->vp_topo->t_filler, "filler", max,
	    QROAM__MSG_TYPE__MT_FILL_REQUEST, &req.base, &f);
	if (rc != 0)
		return rc;
	if (f.f_type != QROAM__MSG_TYPE__MT_FILL_REPLY) {
		rc = vprov_other_reply(&f, "fill");
		frame_release(&f);
		return rc;
	}
	rec = (Qroam__FillRecord *)frame_unpack(&f,
	    &qroam__fill_record__descriptor);
	frame_release(&f);
	if (rec == NULL) {
		log_warnx("provision: fill: malformed FillReply");
		return VPROV_ERROR;
	}
	if (m != 0 && rec->m != m)
		log_warnx("provision: fill: asked for %u keys, got %u", m, rec->m);
	rc = chip_fill(db, rec) == 0 ? QROAM__STATUS_CODE__OK : VPROV_ERROR;
	qroam__fill_record__free_unpacked(rec, NULL);
	if (rc != QROAM__STATUS_CODE__OK)
		return rc;
	if (chip_get(db, out) != 1)
		return VPROV_ERROR;
	log_info("chip filled: chip_id %s, %u keys (k=%u, n=%u)",
	    out->ci_chip_id, out->ci_m, out->ci_k, out->ci_n);
	chip_event(db, "fill", NULL, "chip_id=%s m=%u", out->ci_chip_id,
	    out->ci_m);
	return rc;
}

/* Check and store M1 as the registration of vid with chip_id. */
static int
vprov_store_m1(sqlite3 *db, const struct frame *f, const char *vid,
    const char *chip_id)
{
	Qroam__M1	*m1;
	EVP_PKEY	*pbv;
	int		 rc = VPROV_ERROR;

	m1 = (Qroam__M1 *)frame_unpack(f, &qroam__m1__descriptor);
	if (m1 == NULL) {
		log_warnx("provision: register: malformed M1");
		return VPROV_ERROR;
	}
	if ((pbv = crypto_pub_from_der(m1->pbv.data, m1->pbv.len)) == NULL)
		log_warnx("provision: register: M1 carries no usable public key");
	else if (chip_reg_save(db, vid, chip_id, m1) == 0)
		rc = QROAM__STATUS_CODE__OK;
	EVP_PKEY_free(pbv);
	if (rc == QROAM__STATUS_CODE__OK)
		log_info("registered %s with chip %s (%zu TSPs in M1)", vid,
		    chip_id, m1->n_tsps);
	qroam__m1__free_unpacked(m1, NULL);
	return rc;
}

int
vprov_register(const struct vprov *vp, sqlite3 *db, const char *vid,
    int rebind)
{
	Qroam__RegisterRequest	 req = QROAM__REGISTER_REQUEST__INIT;
	struct chip_info	 ci;
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
	rc = vprov_exchange(vp, &vp->vp_topo->t_registrar, "registrar",
	    vp->vp_max_frame ? vp->vp_max_frame : FRAME_MAX_DEFAULT,
	    QROAM__MSG_TYPE__MT_REGISTER, &req.base, &f);
	if (rc != 0)
		return rc;
	if (f.f_type == QROAM__MSG_TYPE__MT_M1)
		rc = vprov_store_m1(db, &f, vid, ci.ci_chip_id);
	else
		rc = vprov_other_reply(&f, rebind ? "re-register" : "register");
	frame_release(&f);
	if (rc == QROAM__STATUS_CODE__OK)
		chip_event(db, rebind ? "reregister" : "register", NULL,
		    "vehicle_id=%s chip_id=%s", vid, ci.ci_chip_id);
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

/* 1 if the stored registration names the chip's current chip_id. */
static int
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
