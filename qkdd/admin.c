/*
 * Link administration for operators on the KME's HTTPS server: the state
 * of every link (QBER estimate, pool level, secret rate) and the
 * eavesdropper switch.  Only certificates of role operator get in.
 *
 *   GET  /admin/v1/links			{"links": [LINK, ...]}
 *   GET  /admin/v1/links/{a}/{b}		LINK
 *   POST /admin/v1/links/{a}/{b}		body {"eavesdropper": F,
 *						"qber": Q, "rate": BPS}, each
 *						optional; answers LINK
 *
 * Changes last until qkdd stops; the configuration file is not rewritten.
 */
#include <string.h>

#include "ids.h"
#include "kme.h"
#include "log.h"

/* One link as JSON; NULL when out of memory. */
static json_t *
kme_admin_link_json(struct kme *k, const struct qkd_link *l)
{
	return json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:o, s:b, s:f, s:I, "
	    "s:I, s:I, s:I}",
	    "sae_a", l->l_a,
	    "sae_b", l->l_b,
	    "rate", l->l_rate,
	    "qubit_rate", l->l_qubit_rate,
	    "qber_base", l->l_qber,
	    "eavesdropper", l->l_eve,
	    "qber", l->l_has_estimate ? json_real(l->l_est_qber) : json_null(),
	    "aborted", l->l_aborting,
	    "secret_rate", l->l_secret_bps,
	    "stored_key_count",
	    (json_int_t)qkd_pool_available(k->k_pool, l->l_a, l->l_b),
	    "max_key_count", (json_int_t)l->l_pool,
	    "keys_made", (json_int_t)l->l_keys_made,
	    "aborts", (json_int_t)l->l_aborts);
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
	json_t		*body, *v;
	const char	*name;
	double		 eve, qber, rate;

	if ((body = kme_body_object(req, rep)) == NULL)
		return;
	json_object_foreach(body, name, v) {
		if (strcmp(name, "eavesdropper") != 0 &&
		    strcmp(name, "qber") != 0 && strcmp(name, "rate") != 0) {
			kme_error(rep, req, 400, "unknown field \"%.32s\"",
			    name);
			goto out;
		}
	}
	if (kme_admin_number(req, body, "eavesdropper", 0.0, 1.0, &eve,
	    rep) == -1 ||
	    kme_admin_number(req, body, "qber", 0.0, 0.5, &qber, rep) == -1 ||
	    kme_admin_number(req, body, "rate", 0.0, 1e10, &rate, rep) == -1)
		goto out;
	qkd_link_set(l, eve, qber, rate);
	log_info("link %s-%s set by %s: eavesdropper %.2f, base QBER %.4f, "
	    "rate %.0f bits/s", l->l_a, l->l_b, req->kr_cn, l->l_eve,
	    l->l_qber, l->l_rate);
	kme_json(rep, 200, kme_admin_link_json(k, l));
 out:
	json_decref(body);
}

/* Route an admin request after checking the operator role. */
void
kme_admin(struct kme *k, const struct kme_request *req, char **seg,
    size_t nseg, struct kme_reply *rep)
{
	struct qkd_link	*l;

	if (nseg != 0 && nseg != 2) {
		kme_error(rep, req, 404, "unknown path");
		return;
	}
	if (strcmp(req->kr_role, "operator") != 0) {
		kme_error(rep, req, 401, "link administration needs an "
		    "operator certificate");
		return;
	}
	if (req->kr_method == KME_OTHER ||
	    (nseg == 0 && req->kr_method != KME_GET)) {
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
	if (req->kr_method == KME_GET)
		kme_json(rep, 200, kme_admin_link_json(k, l));
	else
		kme_admin_set(k, req, l, rep);
}
