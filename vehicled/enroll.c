/*
 * Enrolment state machines (enroll.h).  A vehicle's enrolment goes
 * through at most two requests, each on the channel of the credential it
 * needs: a FillRequest when the chip needs a fill, then a RegisterRequest
 * (new, or a rebind with the operator credential) when the stored
 * registration does not name the chip's chip_id.  The checks between the
 * steps and the writes of their results are the ones of the blocking
 * vprov_enroll / vprov_refill (provision.c), in the same order.
 */
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "log.h"
#include "provision.h"

#define VENROLL_FILLER_WINDOW		64
#define VENROLL_REGISTRAR_WINDOW	32

enum {
	VE_IDLE,
	VE_FILL,	/* FillRequest in flight */
	VE_REGISTER,	/* RegisterRequest in flight */
	VE_REBIND,	/* RegisterRequest with rebind in flight */
	VE_STORE,	/* the chip stores a fill or a registration */
	VE_DONE,	/* completion deferred to ve_ev */
};

struct venroll_svc {
	struct event_base	*es_base;
	const struct vconf	*es_conf;
	struct vprov		 es_factory;
	struct vprov		 es_oper;
	int			 es_has_oper;
	/* [0] factory, [1] operator; filler and registrar. */
	struct vprov_chan	*es_filler[2];
	struct vprov_chan	*es_registrar[2];
};

static void	venroll_reply(struct vprov_req *, int, const struct frame *);
static void	venroll_next(struct venroll *);

/* Provisioning parameters for one credential of the configuration. */
static void
venroll_vprov(struct vprov *vp, const struct vconf *conf,
    const struct topo *topo, const char *cert, const char *key)
{
	memset(vp, 0, sizeof(*vp));
	vp->vp_topo = topo;
	vp->vp_ca = conf->vc_common.cc_ca;
	vp->vp_cert = cert;
	vp->vp_key = key;
	vp->vp_max_frame = conf->vc_common.cc_max_frame;
	vp->vp_timeout_ms = (int)conf->vc_provision_ms;
}

struct venroll_svc *
venroll_svc_new(struct event_base *base, const struct vconf *conf,
    const struct topo *topo)
{
	struct venroll_svc	*es;
	int			 i;

	es = xcalloc(1, sizeof(*es));
	es->es_base = base;
	es->es_conf = conf;
	venroll_vprov(&es->es_factory, conf, topo, conf->vc_common.cc_cert,
	    conf->vc_common.cc_key);
	venroll_vprov(&es->es_oper, conf, topo, conf->vc_operator_cert,
	    conf->vc_operator_key);
	es->es_has_oper = conf->vc_operator_cert != NULL;
	for (i = 0; i < 1 + es->es_has_oper; i++) {
		const struct vprov *vp = i ? &es->es_oper : &es->es_factory;

		if (vp->vp_cert == NULL)
			continue;
		es->es_filler[i] = vprov_chan_new(base, vp, VPROV_FILLER,
		    vprov_fill_max_frame(vp, conf->vc_fill_m),
		    VENROLL_FILLER_WINDOW);
		es->es_registrar[i] = vprov_chan_new(base, vp, VPROV_REGISTRAR,
		    0, VENROLL_REGISTRAR_WINDOW);
		if (es->es_filler[i] == NULL || es->es_registrar[i] == NULL)
			log_warnx("enrolment: no %s channel; vehicles that"
			    " need one stay without service", i ? "operator" :
			    "factory");
	}
	return es;
}

void
venroll_svc_free(struct venroll_svc *es)
{
	int	i;

	if (es == NULL)
		return;
	for (i = 0; i < 2; i++) {
		vprov_chan_free(es->es_filler[i]);
		vprov_chan_free(es->es_registrar[i]);
	}
	free(es);
}

void
venroll_svc_retune(struct venroll_svc *es, const struct vconf *conf)
{
	int	i;

	for (i = 0; i < 2; i++) {
		if (es->es_filler[i] != NULL)
			vprov_chan_set_timeout(es->es_filler[i],
			    (int)conf->vc_provision_ms);
		if (es->es_registrar[i] != NULL)
			vprov_chan_set_timeout(es->es_registrar[i],
			    (int)conf->vc_provision_ms);
	}
}

void
venroll_svc_close(struct venroll_svc *es)
{
	int	i;

	for (i = 0; i < 2; i++) {
		if (es->es_filler[i] != NULL)
			vprov_chan_close(es->es_filler[i]);
		if (es->es_registrar[i] != NULL)
			vprov_chan_close(es->es_registrar[i]);
	}
}

size_t
venroll_svc_pending(const struct venroll_svc *es)
{
	size_t	n = 0;
	int	i;

	for (i = 0; i < 2; i++) {
		if (es->es_filler[i] != NULL)
			n += vprov_chan_pending(es->es_filler[i]);
		if (es->es_registrar[i] != NULL)
			n += vprov_chan_pending(es->es_registrar[i]);
	}
	return n;
}

/* The deferred completion of an enrolment that needed no (more) request. */
static void
venroll_ev_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct venroll	*e = arg;

	(void)fd;
	(void)ev;
	if (e->ve_step != VE_DONE)
		return;
	e->ve_step = VE_IDLE;
	log_setname(e->ve_logname);
	e->ve_done(e->ve_arg, e->ve_rc);
}

void
venroll_init(struct venroll *e, struct venroll_svc *es, struct vchip *chip,
    const char *vid, enum chip_mode mode, const char *logname)
{
	memset(e, 0, sizeof(*e));
	e->ve_svc = es;
	e->ve_chip = chip;
	e->ve_vid = vid;
	e->ve_mode = mode;
	e->ve_logname = logname;
	e->ve_req.vr_done = venroll_reply;
	e->ve_req.vr_arg = e;
	if ((e->ve_ev = event_new(es->es_base, -1, 0, venroll_ev_cb,
	    e)) == NULL)
		fatalx("cannot create timers");
}

void
venroll_clear(struct venroll *e)
{
	venroll_cancel(e);
	if (e->ve_ev != NULL)
		event_free(e->ve_ev);
	e->ve_ev = NULL;
}

/* End the enrolment with rc; the owner hears it on the next loop turn. */
static void
venroll_finish(struct venroll *e, int rc)
{
	e->ve_recover = 0;
	e->ve_rc = rc;
	e->ve_step = VE_DONE;
	event_active(e->ve_ev, EV_TIMEOUT, 0);
}

/* Submit msg on chan as the request of step (or finish with an error). */
static void
venroll_submit(struct venroll *e, struct vprov_chan *chan, int step,
    uint32_t type, const ProtobufCMessage *msg)
{
	if (chan == NULL) {
		venroll_finish(e, VPROV_ERROR);
		return;
	}
	if (vprov_chan_submit(chan, &e->ve_req, type, msg) == -1) {
		venroll_finish(e, VPROV_ERROR);
		return;
	}
	e->ve_chan = chan;
	e->ve_step = step;
}

/* Ask for a fill with the credential cred (0 factory, 1 operator). */
static void
venroll_fill(struct venroll *e, int cred)
{
	struct venroll_svc	*es = e->ve_svc;
	Qroam__FillRequest	 req;

	log_info("%s: asking the filler for a fill", e->ve_vid);
	vprov_fill_request(&req, es->es_conf->vc_fill_m);
	venroll_submit(e, es->es_filler[cred], VE_FILL,
	    QROAM__MSG_TYPE__MT_FILL_REQUEST, &req.base);
}

/* Ask for the registration of the chip, as a rebind if rebind. */
static void
venroll_register(struct venroll *e, int cred, int rebind)
{
	struct venroll_svc	*es = e->ve_svc;
	Qroam__RegisterRequest	 req = QROAM__REGISTER_REQUEST__INIT;

	log_info("%s: %s with the registrar", e->ve_vid, rebind ?
	    "re-registering" : "registering");
	req.vehicle_id = (char *)e->ve_vid;
	req.chip_id = e->ve_chip_id;
	if (rebind) {
		req.has_rebind = 1;
		req.rebind = 1;
	}
	venroll_submit(e, es->es_registrar[cred], rebind ? VE_REBIND :
	    VE_REGISTER, QROAM__MSG_TYPE__MT_REGISTER, &req.base);
}

/*
 * 1 if the stored registration names the chip's chip_id, 0 if a
 * registration is due (*registered: of another chip), -1 on error.
 */
static int
venroll_reg_current(struct venroll *e, const struct chip_info *ci,
    int *registered)
{
	struct chip_reg	cr;
	int		r, same;

	*registered = 0;
	if ((r = vchip_reg(e->ve_chip, &cr)) == -1)
		return -1;
	if (r == 0)
		return 0;
	*registered = 1;
	same = strcmp(cr.cr_chip_id, ci->ci_chip_id) == 0;
	chip_reg_clear(&cr);
	return same;
}

/*
 * The step after the chip is known to hold a fill: nothing, or the
 * registration the stored one lacks.
 */
static void
venroll_after_fill(struct venroll *e, const struct chip_info *ci)
{
	int	rc, registered, refill = e->ve_kind == VENROLL_REFILL;

	memcpy(e->ve_chip_id, ci->ci_chip_id, sizeof(e->ve_chip_id));
	if ((rc = venroll_reg_current(e, ci, &registered)) != 0) {
		venroll_finish(e, rc == 1 ? QROAM__STATUS_CODE__OK :
		    VPROV_ERROR);
		return;
	}
	if (refill || e->ve_recover) {
		venroll_register(e, 1, registered || e->ve_recover);
		return;
	}
	if (!registered) {
		venroll_register(e, 0, 0);
		return;
	}
	if (!e->ve_svc->es_has_oper) {
		log_warnx("%s: the registration names another chip than %s and"
		    " no operator credential is configured", e->ve_vid,
		    ci->ci_chip_id);
		venroll_finish(e, QROAM__STATUS_CODE__AUTH_FAILED);
		return;
	}
	venroll_register(e, 1, 1);
}

/* The first step, from what the store holds. */
static void
venroll_next(struct venroll *e)
{
	struct chip_info	ci;
	int64_t			left = 1;
	int			rc;

	if ((rc = vchip_get(e->ve_chip, &ci)) == -1 ||
	    (e->ve_kind == VENROLL_REFILL &&
	    (left = vchip_unused(e->ve_chip, e->ve_mode)) < 0)) {
		venroll_finish(e, VPROV_ERROR);
		return;
	}
	if (e->ve_kind == VENROLL_REFILL && left == 0) {
		log_info("%s: refill: no unused key left", e->ve_vid);
		venroll_fill(e, 1);
	} else if (rc == 0)
		venroll_fill(e, 0);
	else
		venroll_after_fill(e, &ci);
}

void
venroll_start(struct venroll *e, enum venroll_kind kind,
    void (*done)(void *, int), void *arg)
{
	venroll_cancel(e);
	e->ve_kind = kind;
	e->ve_done = done;
	e->ve_arg = arg;
	/* A store step cannot be stopped: this one starts once it ends. */
	if (e->ve_storing) {
		e->ve_again = 1;
		return;
	}
	log_setname(e->ve_logname);
	venroll_next(e);
}

void
venroll_cancel(struct venroll *e)
{
	if (e->ve_step == VE_FILL || e->ve_step == VE_REGISTER ||
	    e->ve_step == VE_REBIND)
		vprov_chan_cancel(e->ve_chan, &e->ve_req);
	if (e->ve_ev != NULL)
		event_del(e->ve_ev);
	e->ve_step = VE_IDLE;
	e->ve_again = 0;
	e->ve_chan = NULL;
}

int
venroll_busy(const struct venroll *e)
{
	return e->ve_step != VE_IDLE || e->ve_again;
}

/*
 * A store step ended: 1 if the enrolment goes on, 0 if it was cancelled
 * (or started anew) meanwhile.
 */
static int
venroll_stored(struct venroll *e)
{
	e->ve_storing = 0;
	log_setname(e->ve_logname);
	if (e->ve_again) {
		e->ve_again = 0;
		e->ve_step = VE_IDLE;
		venroll_next(e);
		return 0;
	}
	if (e->ve_step != VE_STORE)
		return 0;
	e->ve_step = VE_IDLE;
	return 1;
}

/* The chip stored the fill. */
static void
venroll_fill_stored(void *arg, int rc)
{
	struct venroll		*e = arg;
	struct chip_info	 ci;

	if (!venroll_stored(e))
		return;
	if (rc != 0 || vchip_get(e->ve_chip, &ci) != 1) {
		log_warnx("%s: fill failed: the chip cannot store it", e->ve_vid);
		venroll_finish(e, VPROV_ERROR);
		return;
	}
	log_info("chip filled: chip_id %s, %u keys (k=%u, n=%u)", ci.ci_chip_id,
	    ci.ci_m, ci.ci_k, ci.ci_n);
	vchip_event(e->ve_chip, "fill", NULL, "chip_id=%s m=%u", ci.ci_chip_id,
	    ci.ci_m);
	venroll_after_fill(e, &ci);
}

/* The chip stored the registration of M1. */
static void
venroll_reg_stored(void *arg, int rc)
{
	struct venroll	*e = arg;

	if (!venroll_stored(e))
		return;
	if (rc != 0) {
		log_warnx("registration of %s failed: the chip cannot store it",
		    e->ve_vid);
		venroll_finish(e, VPROV_ERROR);
		return;
	}
	log_info("registered %s with chip %s", e->ve_vid, e->ve_chip_id);
	vchip_event(e->ve_chip, e->ve_rebind ? "reregister" : "register", NULL,
	    "vehicle_id=%s chip_id=%s", e->ve_vid, e->ve_chip_id);
	venroll_finish(e, QROAM__STATUS_CODE__OK);
}

/* The filler's reply: store the fill, then register. */
static void
venroll_filled(struct venroll *e, const struct frame *f)
{
	Qroam__FillRecord	*rec;
	int			 rc;

	rc = vprov_fill_reply(f, e->ve_svc->es_conf->vc_fill_m, &rec);
	if (rc != QROAM__STATUS_CODE__OK) {
		log_warnx("%s: fill failed: %s", e->ve_vid,
		    vprov_result_name(rc));
		venroll_finish(e, rc);
		return;
	}
	e->ve_step = VE_STORE;
	e->ve_storing = 1;
	vchip_fill(e->ve_chip, rec, venroll_fill_stored, e);
	vprov_fill_free(rec);
}

/* The registrar's reply: store M1. */
static void
venroll_registered(struct venroll *e, const struct frame *f, int rebind)
{
	Qroam__M1	*m1;
	int		 rc;

	rc = vprov_register_reply(f, rebind, &m1);
	/*
	 * Registered already, yet nothing is stored here: the answer to an
	 * earlier request was lost (its connection closed while the key pair
	 * was made).  The operator rebinds the vehicle to a fresh chip.
	 */
	if (rc == QROAM__STATUS_CODE__DUPLICATE_REGISTRATION && !rebind &&
	    e->ve_kind == VENROLL_START && e->ve_svc->es_has_oper &&
	    !e->ve_recover) {
		log_warnx("%s: registered already without an answer here: a new"
		    " chip and a rebind with the operator credential", e->ve_vid);
		e->ve_recover = 1;
		venroll_fill(e, 1);
		return;
	}
	if (rc != QROAM__STATUS_CODE__OK) {
		log_warnx("registration of %s failed: %s", e->ve_vid,
		    vprov_result_name(rc));
		/* The lost one may still be under way there: try later. */
		if (rc == QROAM__STATUS_CODE__DUPLICATE_REGISTRATION &&
		    e->ve_recover)
			rc = QROAM__STATUS_CODE__UNAVAILABLE;
		venroll_finish(e, rc);
		return;
	}
	e->ve_step = VE_STORE;
	e->ve_storing = 1;
	e->ve_rebind = rebind;
	vchip_reg_save(e->ve_chip, e->ve_vid, e->ve_chip_id, m1,
	    venroll_reg_stored, e);
	qroam__m1__free_unpacked(m1, NULL);
}

/* A channel's answer to the request in flight. */
static void
venroll_reply(struct vprov_req *r, int rc, const struct frame *f)
{
	struct venroll	*e = r->vr_arg;
	int		 step = e->ve_step;

	e->ve_chan = NULL;
	e->ve_step = VE_IDLE;
	log_setname(e->ve_logname);
	if (rc != 0) {
		log_warnx("%s: %s: %s", e->ve_vid, step == VE_FILL ? "fill" :
		    "registration", vprov_result_name(rc));
		venroll_finish(e, rc);
		return;
	}
	if (step == VE_FILL)
		venroll_filled(e, f);
	else
		venroll_registered(e, f, step == VE_REBIND);
}
