/*
 * Link administration for operators on the KME's HTTPS server: the state
 * of every link (QBER estimate, pool level, secret rate) and the
 * eavesdropper switch.  Only certificates of role operator get in.
 *
 *   GET  /admin/v1/links			{"links": [LINK, ...]}
 *   GET  /admin/v1/links/{a}/{b}		LINK
 *   POST /admin/v1/links/{a}/{b}		body {"eavesdropper": F,
 *						"qber": Q, "rate": BPS,
 *						"sample": BITS, "fec": F},
 *						each optional; answers LINK
 *   POST /admin/v1/links/{a}/{b}/run	body {"ticks": N}: run N ticks
 *						of the link at once; answers
 *						LINK and "run": {"ticks",
 *						"blocks", "aborts", "keys"}
 *
 * Changes last until qkdd stops; the configuration file is not rewritten.
 * A run holds the event loop for its ticks (at most QKD_RUN_MAX): it is
 * for experiments and tests that need many blocks without waiting.
 */
#include <math.h>
#include <string.h>

#include "ids.h"
#include "kme.h"
#include "log.h"

/* A fibre link's model, or null. */
static json_t *
kme_admin_fibre_json(const struct qkd_link *l)
{
	const struct qkd_fibre	*f = &l->l_fib;
	struct qkd_fibre_gain	 g;

	if (!l->l_fibre)
		return json_null();
	qkd_fibre_gain(f, &g);
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
	    "s:f}", "km", f->fb_km, "loss", f->fb_loss, "detector",
	    f->fb_eta_bob, "dark", f->fb_dark, "mu", f->fb_mu, "decoy",
	    f->fb_nu, "pulses", f->fb_pulses, "gain", g.fg_qmu,
	    "qber_signal", g.fg_emu, "gain_single", g.fg_q1,
	    "qber_single", g.fg_e1);
}

/* One link as JSON; NULL when out of memory. */
static json_t *
kme_admin_link_json(struct kme *k, const struct qkd_link *l)
{
	json_t	*js;

	js = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:I, s:f, s:o, s:o, "
	    "s:o, s:o, s:s, s:b, s:f, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "sae_a", l->l_a,
	    "sae_b", l->l_b,
	    "rate", l->l_rate,
	    "qubit_rate", l->l_qubit_rate,
	    "qber_base", l->l_qber,
	    "eavesdropper", l->l_eve,
	    "sample", (json_int_t)l->l_sample_bits,
	    "fec", l->l_fec,
	    "qber", l->l_has_estimate ? json_real(l->l_est_qber) : json_null(),
	    "qber_bound", l->l_has_estimate ? json_real(l->l_est_bound) :
	    json_null(),
	    "block_qber", l->l_blocks > 0 ? json_real(l->l_blk_qber) :
	    json_null(),
	    "block_bound", l->l_blocks > 0 ? json_real(l->l_blk_bound) :
	    json_null(),
	    "state", qkd_link_state(l),
	    "aborted", l->l_aborting,
	    "secret_rate", l->l_secret_bps,
	    "stored_key_count",
	    (json_int_t)qkd_pool_available(k->k_pool, l->l_a, l->l_b),
	    "max_key_count", (json_int_t)l->l_pool,
	    "keys_made", (json_int_t)l->l_keys_made,
	    "blocks", (json_int_t)l->l_blocks,
	    "aborts", (json_int_t)l->l_aborts,
	    "block_sampled", (json_int_t)l->l_blk.bb_sampled);
	if (js != NULL) {
		json_object_set_new(js, "fibre", kme_admin_fibre_json(l));
		json_object_set_new(js, "rate_asymptotic", l->l_fibre ?
		    json_real(l->l_rate_asym) : json_null());
	}
	return js;
}

/* GET /admin/v1/links */
static void
kme_admin_list(struct kme *k, struct kme_reply *rep)
{
	json_t	*arr;
	size_t	 i;

	if ((arr = json_array()) == NULL) {
		kme_json(rep, 500, NULL);
		return;
	}
	for (i = 0; i < qkd_links_count(k->k_links); i++)
		json_array_append_new(arr, kme_admin_link_json(k,
		    qkd_links_at(k->k_links, i)));
	kme_json(rep, 200, json_pack("{s:o}", "links", arr));
}

/* A number member of body within [min, max] into *out (-1 if absent). */
static int
kme_admin_number(const struct kme_request *req, json_t *body,
    const char *name, double min, double max, double *out,
    struct kme_reply *rep)
{
	json_t	*v = json_object_get(body, name);

	*out = -1.0;
	if (v == NULL)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < min ||
	    json_number_value(v) > max) {
		kme_error(rep, req, 400, "%s shall be a number in %g..%g", name,
		    min, max);
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

/* POST /admin/v1/links/{a}/{b}: change the link's settings. */
static void
kme_admin_set(struct kme *k, const struct kme_request *req,
    struct qkd_link *l, struct kme_reply *rep)
{
	struct qkd_link_change	 x;
	json_t			*body, *v;
	const char		*name;

	if ((body = kme_body_object(req, rep)) == NULL)
		return;
	json_object_foreach(body, name, v) {
		if (strcmp(name, "eavesdropper") != 0 &&
		    strcmp(name, "qber") != 0 && strcmp(name, "rate") != 0 &&
		    strcmp(name, "sample") != 0 && strcmp(name, "fec") != 0) {
			kme_error(rep, req, 400, "unknown field \"%.32s\"",
			    name);
			goto out;
		}
	}
	if (kme_admin_number(req, body, "eavesdropper", 0.0, 1.0, &x.lx_eve,
	    rep) == -1 ||
	    kme_admin_number(req, body, "qber", 0.0, 0.5, &x.lx_qber,
	    rep) == -1 ||
	    kme_admin_number(req, body, "rate", 0.0, 1e10, &x.lx_rate,
	    rep) == -1 ||
	    kme_admin_number(req, body, "sample", QKDD_MIN_SAMPLE,
	    QKDD_MAX_SAMPLE, &x.lx_sample, rep) == -1 ||
	    kme_admin_number(req, body, "fec", 1.0, QKDD_MAX_FEC, &x.lx_fec,
	    rep) == -1)
		goto out;
	if (x.lx_sample >= 0.0)
		x.lx_sample = floor(x.lx_sample);
	qkd_link_set(l, &x);
	log_info("link %s-%s set by %s: eavesdropper %.2f, base QBER %.4f, "
	    "rate %.0f bits/s, sample %u bits, f_EC %.3f", l->l_a, l->l_b,
	    req->kr_cn, l->l_eve, l->l_qber, l->l_rate, l->l_sample_bits,
	    l->l_fec);
	kme_json(rep, 200, kme_admin_link_json(k, l));
 out:
	json_decref(body);
}

/* POST /admin/v1/links/{a}/{b}/run: many ticks at once. */
static void
kme_admin_run(struct kme *k, const struct kme_request *req,
    struct qkd_link *l, struct kme_reply *rep)
{
	struct qkd_run	 r;
	json_t		*body, *v, *js;
	const char	*name;
	double		 ticks;

	if ((body = kme_body_object(req, rep)) == NULL)
		return;
	json_object_foreach(body, name, v) {
		if (strcmp(name, "ticks") != 0) {
			kme_error(rep, req, 400, "unknown field \"%.32s\"",
			    name);
			goto out;
		}
	}
	if (kme_admin_number(req, body, "ticks", 1.0, QKD_RUN_MAX, &ticks,
	    rep) == -1)
		goto out;
	if (ticks < 0.0) {
		kme_error(rep, req, 400, "ticks is missing");
		goto out;
	}
	qkd_link_run(k->k_links, l, (unsigned)ticks, &r);
	log_info("link %s-%s run by %s: %u ticks, %llu blocks, %llu aborted, "
	    "%llu keys", l->l_a, l->l_b, req->kr_cn, (unsigned)ticks,
	    (unsigned long long)r.r_blocks, (unsigned long long)r.r_aborts,
	    (unsigned long long)r.r_keys);
	if ((js = kme_admin_link_json(k, l)) != NULL)
		json_object_set_new(js, "run", json_pack("{s:I, s:I, s:I, s:I}",
		    "ticks", (json_int_t)ticks, "blocks", (json_int_t)r.r_blocks,
		    "aborts", (json_int_t)r.r_aborts,
		    "keys", (json_int_t)r.r_keys));
	kme_json(rep, 200, js);
 out:
	json_decref(body);
}

/* Route an admin request after checking the operator role. */
void
kme_admin(struct kme *k, const struct kme_request *req, char **seg,
    size_t nseg, struct kme_reply *rep)
{
	struct qkd_link	*l;

	if (nseg != 0 && nseg != 2 && (nseg != 3 || strcmp(seg[2], "run") != 0)) {
		kme_error(rep, req, 404, "unknown path");
		return;
	}
	if (strcmp(req->kr_role, "operator") != 0) {
		kme_error(rep, req, 401, "link administration needs an "
		    "operator certificate");
		return;
	}
	if (req->kr_method == KME_OTHER ||
	    (nseg == 0 && req->kr_method != KME_GET) ||
	    (nseg == 3 && req->kr_method != KME_POST)) {
		kme_error(rep, req, 405, "method not allowed");
		return;
	}
	if (nseg == 0) {
		kme_admin_list(k, rep);
		return;
	}
	if (!id_valid_name(seg[0]) || !id_valid_name(seg[1]) ||
	    (l = qkd_links_find(k->k_links, seg[0], seg[1])) == NULL) {
		kme_error(rep, req, 404, "no QKD link between %.32s and %.32s",
		    seg[0], seg[1]);
		return;
	}
	if (nseg == 3)
		kme_admin_run(k, req, l, rep);
	else if (req->kr_method == KME_GET)
		kme_json(rep, 200, kme_admin_link_json(k, l));
	else
		kme_admin_set(k, req, l, rep);
}
