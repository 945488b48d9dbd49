/*
 * ETSI GS QKD 014 v1.1.1 on qkdd: status, enc_keys and dec_keys in their
 * GET and POST forms.  The caller's SAE id is its certificate CN: the
 * master for status and enc_keys (the path names the slave), the slave for
 * dec_keys (the path names the master).  A key is reserved for one master
 * and one slave at enc_keys and deleted once that slave fetched it.  Both
 * work in the store's open group (pool.h): their replies, keys or
 * refusals alike, are marked to go out once the group's commit is
 * durable, since they answer from changes not yet stored.
 *
 * Key sizes: the pool holds keys of key_size bits; a request may ask for
 * any multiple of 8 from QKDD_MIN_KEYSIZE up to key_size bits and gets the
 * leading bits of a pool key (min_key_size and max_key_size in status).
 * additional_slave_SAE_IDs (max_SAE_ID_count 0) and extension_mandatory
 * are not supported and answer 400; extension_optional is ignored.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "bb84.h"
#include "crypto.h"
#include "ids.h"
#include "kme.h"
#include "log.h"
#include "ops.h"

#define MAXSEG		8
#define MAXPATH		512
#define MSG_NOTFOUND	"one or more keys specified are not found on KME"

/* The request method for logs. */
static const char *
kme_method_name(enum kme_method m)
{
	return m == KME_GET ? "GET" : m == KME_POST ? "POST" : "other method";
}

/* Serialise v as the reply body; 500 if that fails. */
void
kme_json(struct kme_reply *rep, int status, json_t *v)
{
	rep->kp_status = status;
	rep->kp_secret = 0;
	rep->kp_body = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (rep->kp_body == NULL) {
		rep->kp_status = 500;
		rep->kp_body = strdup("{\"message\":\"out of memory\"}");
	}
	rep->kp_len = rep->kp_body != NULL ? strlen(rep->kp_body) : 0;
}

/* Log the refusal with the caller and reason, and answer {"message": ...}. */
void
kme_error(struct kme_reply *rep, const struct kme_request *req, int status,
    const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s %.128s from %s (%s): %d %s",
	    kme_method_name(req->kr_method),
	    req->kr_path, req->kr_cn, req->kr_peer, status, msg);
	kme_json(rep, status, json_pack("{s:s}", "message", msg));
}

/* Free the reply body, wiping it when it holds keys. */
void
kme_reply_free(struct kme_reply *rep)
{
	if (rep->kp_body != NULL && rep->kp_secret)
		crypto_wipe(rep->kp_body, rep->kp_len);
	free(rep->kp_body);
	rep->kp_body = NULL;
}

int
kme_commit(struct kme *k)
{
	if (qkd_pool_group_end(k->k_pool) == 0)
		return 0;
	log_warnx("key store failure: the answers of a group of enc_keys and "
	    "dec_keys requests fail with 503, their changes are not kept");
	return -1;
}

void
kme_reply_settle(struct kme_reply *rep, int committed)
{
	if (committed) {
		if (rep->kp_link != NULL && rep->kp_delivered > 0)
			qkd_ops_delivered(rep->kp_link, rep->kp_delivered);
		return;
	}
	kme_reply_free(rep);
	kme_json(rep, 503, json_pack("{s:s}", "message", "key store failure"));
}

/* Parse the request body, which must be a JSON object. */
json_t *
kme_body_object(const struct kme_request *req, struct kme_reply *rep)
{
	json_error_t	 err;
	json_t		*v;

	if (req->kr_bodylen == 0)
		return json_object();
	v = json_loadb(req->kr_body, req->kr_bodylen, JSON_REJECT_DUPLICATES,
	    &err);
	if (v == NULL) {
		kme_error(rep, req, 400, "malformed JSON body: %s", err.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		kme_error(rep, req, 400, "the body shall be a JSON object");
		return NULL;
	}
	return v;
}

/* A decimal integer of 1..9 digits; 0 or -1. */
static int
kme_parse_uint(const char *s, unsigned *out)
{
	size_t	n = strlen(s), i;

	if (n == 0 || n > 9)
		return -1;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	*out = (unsigned)strtoul(s, NULL, 10);
	return 0;
}

/* The caller must be an SAE: its CN has the syntax of an SAE id. */
static int
kme_caller_ok(const struct kme_request *req, struct kme_reply *rep)
{
	if (id_valid_name(req->kr_cn))
		return 1;
	kme_error(rep, req, 401, "certificate CN is not an SAE ID");
	return 0;
}

/* The link between two SAEs, or NULL after a 400. */
static struct qkd_link *
kme_link(struct kme *k, const struct kme_request *req, const char *x,
    const char *y, struct kme_reply *rep)
{
	struct qkd_link	*l;

	if ((l = qkd_links_find(k->k_links, x, y)) == NULL)
		kme_error(rep, req, 400, "no QKD link between %s and %s", x, y);
	return l;
}

/* GET /api/v1/keys/{slave}/status */
static void
kme_status(struct kme *k, const struct kme_request *req, const char *slave,
    struct kme_reply *rep)
{
	const struct qkdd_conf	*qc = k->k_conf;
	struct qkd_link		*l;

	if ((l = kme_link(k, req, req->kr_cn, slave, rep)) == NULL)
		return;
	kme_json(rep, 200, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:s}",
	    "source_KME_ID", qc->qc_common.cc_id,
	    "target_KME_ID", qc->qc_common.cc_id,
	    "master_SAE_ID", req->kr_cn,
	    "slave_SAE_ID", slave,
	    "key_size", (json_int_t)qc->qc_key_size,
	    "stored_key_count",
	    (json_int_t)qkd_link_deliverable(k->k_links, l),
	    "max_key_count", (json_int_t)l->l_pool,
	    "max_key_per_request", (json_int_t)qc->qc_max_per_request,
	    "max_key_size", (json_int_t)qc->qc_key_size,
	    "min_key_size", (json_int_t)QKDD_MIN_KEYSIZE,
	    "max_SAE_ID_count", (json_int_t)0,
	    "qroam_link_state", qkd_link_state(l)));
}

/*
 * The key container {"keys":[{"key_ID": ..., "key": base64}, ...]}, built
 * in a buffer of its own so that it can be wiped after sending.
 */
static void
kme_key_container(struct kme_reply *rep, const struct qkd_key *keys, size_t n)
{
	size_t	cap, off = 0, i;
	char	*buf;

	cap = 16 + n * (QKD_KEYID_LEN + 4 * (QKD_KEYMAX / 3 + 1) + 32);
	if ((buf = malloc(cap)) == NULL) {
		rep->kp_status = 500;
		rep->kp_body = strdup("{\"message\":\"out of memory\"}");
		rep->kp_len = rep->kp_body != NULL ? strlen(rep->kp_body) : 0;
		return;
	}
	off += (size_t)snprintf(buf, cap, "{\"keys\":[");
	for (i = 0; i < n; i++) {
		off += (size_t)snprintf(buf + off, cap - off,
		    "%s{\"key_ID\":\"%s\",\"key\":\"", i ? "," : "",
		    keys[i].qk_id);
		off += (size_t)EVP_EncodeBlock((unsigned char *)buf + off,
		    keys[i].qk_key, (int)keys[i].qk_len);
		off += (size_t)snprintf(buf + off, cap - off, "\"}");
	}
	off += (size_t)snprintf(buf + off, cap - off, "]}");
	rep->kp_status = 200;
	rep->kp_body = buf;
	rep->kp_len = off;
	rep->kp_secret = 1;
}

/* number and size from the query of GET enc_keys; 0 or -1 after a 400. */
int
kme_enc_query(const struct kme_request *req, struct kme_enc_params *ep,
    struct kme_reply *rep)
{
	struct evkeyvalq	 q;
	const char		*v;
	int			 rc = -1;

	TAILQ_INIT(&q);
	if (req->kr_query != NULL &&
	    evhttp_parse_query_str(req->kr_query, &q) == -1) {
		kme_error(rep, req, 400, "malformed query string");
		goto out;
	}
	if ((v = evhttp_find_header(&q, "number")) != NULL &&
	    kme_parse_uint(v, &ep->ep_number) == -1) {
		kme_error(rep, req, 400, "number shall be a positive integer");
		goto out;
	}
	if ((v = evhttp_find_header(&q, "size")) != NULL &&
	    kme_parse_uint(v, &ep->ep_size) == -1) {
		kme_error(rep, req, 400, "size shall be a positive integer");
		goto out;
	}
	rc = 0;
 out:
	evhttp_clear_headers(&q);
	return rc;
}

/* A JSON member that must be absent or an empty array; 0 or -1 after a 400. */
static int
kme_enc_unsupported(const struct kme_request *req, json_t *body,
    const char *name, const char *msg, struct kme_reply *rep)
{
	json_t	*v = json_object_get(body, name);

	if (v == NULL || json_is_null(v) ||
	    (json_is_array(v) && json_array_size(v) == 0))
		return 0;
	kme_error(rep, req, 400, "%s", msg);
	return -1;
}

/* A JSON integer member into *out (left alone if absent); 0 or -1. */
static int
kme_json_uint(const struct kme_request *req, json_t *body, const char *name,
    unsigned *out, struct kme_reply *rep)
{
	json_t		*v = json_object_get(body, name);
	json_int_t	 i;

	if (v == NULL)
		return 0;
	i = json_is_integer(v) ? json_integer_value(v) : -1;
	if (i < 0 || i > 1000000000) {
		kme_error(rep, req, 400, "%s shall be a positive integer",
		    name);
		return -1;
	}
	*out = (unsigned)i;
	return 0;
}

/* The parameters of POST enc_keys; 0 or -1 after a 400. */
int
kme_enc_body(const struct kme_request *req, struct kme_enc_params *ep,
    struct kme_reply *rep)
{
	json_t	*body;
	int	 rc = -1;

	if ((body = kme_body_object(req, rep)) == NULL)
		return -1;
	if (kme_json_uint(req, body, "number", &ep->ep_number, rep) == -1 ||
	    kme_json_uint(req, body, "size", &ep->ep_size, rep) == -1 ||
	    kme_enc_unsupported(req, body, "additional_slave_SAE_IDs",
	    "additional_slave_SAE_IDs are not supported (max_SAE_ID_count 0)",
	    rep) == -1 ||
	    kme_enc_unsupported(req, body, "extension_mandatory",
	    "not all extension_mandatory parameters are supported", rep) == -1)
		goto out;
	rc = 0;
 out:
	json_decref(body);
	return rc;
}

/* Range checks of number and size; 0 or -1 after a 400. */
int
kme_enc_check(struct kme *k, const struct kme_request *req,
    const struct kme_enc_params *ep, struct kme_reply *rep)
{
	const struct qkdd_conf	*qc = k->k_conf;

	if (ep->ep_number < 1 || ep->ep_number > qc->qc_max_per_request) {
		kme_error(rep, req, 400, "number shall be 1..%u "
		    "(max_key_per_request)", qc->qc_max_per_request);
		return -1;
	}
	if (ep->ep_size % 8 != 0) {
		kme_error(rep, req, 400, "size shall be a multiple of 8");
		return -1;
	}
	if (ep->ep_size < QKDD_MIN_KEYSIZE || ep->ep_size > qc->qc_key_size) {
		kme_error(rep, req, 400, "size shall be %d..%u bits",
		    QKDD_MIN_KEYSIZE, qc->qc_key_size);
		return -1;
	}
	return 0;
}

/* GET|POST /api/v1/keys/{slave}/enc_keys */
static void
kme_enc_keys(struct kme *k, const struct kme_request *req, const char *slave,
    struct kme_reply *rep)
{
	struct kme_enc_params	 ep;
	struct qkd_link		*l;
	struct qkd_key		*keys;
	size_t			 i;
	int			 rc;

	ep.ep_number = 1;
	ep.ep_size = k->k_conf->qc_key_size;
	if ((req->kr_method == KME_GET ? kme_enc_query(req, &ep, rep) :
	    kme_enc_body(req, &ep, rep)) == -1 ||
	    kme_enc_check(k, req, &ep, rep) == -1 ||
	    (l = kme_link(k, req, req->kr_cn, slave, rep)) == NULL)
		return;
	if (l->l_aborting) {
		kme_error(rep, req, 503, "QBER %.1f %% (bound %.1f %%) above "
		    "%.0f %% on the link between %s and %s: no key",
		    100.0 * l->l_est_qber, 100.0 * l->l_est_bound,
		    100.0 * BB84_QBER_MAX, l->l_a, l->l_b);
		return;
	}
	if ((keys = calloc(ep.ep_number, sizeof(*keys))) == NULL) {
		kme_error(rep, req, 503, "out of memory");
		return;
	}
	qkd_pool_group_begin(k->k_pool);
	rc = qkd_pool_reserve(k->k_pool, req->kr_cn, slave, ep.ep_number,
	    ep.ep_size / 8, keys);
	if (rc == 1)
		kme_error(rep, req, 503, "not enough keys between %s and %s "
		    "(%zu stored, %u requested)", l->l_a, l->l_b,
		    qkd_pool_available(k->k_pool, l->l_a, l->l_b),
		    ep.ep_number);
	else if (rc == -1)
		kme_error(rep, req, 503, "key store failure");
	else {
		for (i = 0; i < ep.ep_number; i++)
			log_info("enc_keys: key %s (%u bits) to master %s for "
			    "slave %s", keys[i].qk_id, ep.ep_size, req->kr_cn,
			    slave);
		kme_key_container(rep, keys, ep.ep_number);
	}
	rep->kp_commit = 1;
	crypto_wipe(keys, ep.ep_number * sizeof(*keys));
	free(keys);
}

/* key_IDs of POST dec_keys into ids (pointers into *body); n or -1. */
int
kme_dec_body(struct kme *k, const struct kme_request *req, json_t **body,
    const char **ids, struct kme_reply *rep)
{
	json_t	*arr, *e, *id;
	size_t	 i;

	if ((*body = kme_body_object(req, rep)) == NULL)
		return -1;
	arr = json_object_get(*body, "key_IDs");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		kme_error(rep, req, 400, "key_IDs shall be a non-empty array");
		return -1;
	}
	if (json_array_size(arr) > k->k_conf->qc_max_per_request) {
		kme_error(rep, req, 400, "more than max_key_per_request (%u) "
		    "key_IDs", k->k_conf->qc_max_per_request);
		return -1;
	}
	json_array_foreach(arr, i, e) {
		if (!json_is_object(e) ||
		    !json_is_string(id = json_object_get(e, "key_ID"))) {
			kme_error(rep, req, 400, "each key_IDs entry shall "
			    "hold a key_ID string");
			return -1;
		}
		ids[i] = json_string_value(id);
	}
	return (int)json_array_size(arr);
}

/* A UUID in text form, as this KME issues key IDs. */
static int
kme_valid_key_id(const char *s)
{
	size_t	i;

	if (strlen(s) != QKD_KEYID_LEN)
		return 0;
	for (i = 0; i < QKD_KEYID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* Deliver the n keys ids from master to the calling slave. */
static void
kme_dec_deliver(struct kme *k, const struct kme_request *req,
    const char *master, const char **ids, size_t n, struct kme_reply *rep)
{
	struct qkd_key	*keys;
	struct qkd_link	*l;
	size_t		 bad, i;

	for (i = 0; i < n; i++) {
		if (!kme_valid_key_id(ids[i])) {
			kme_error(rep, req, 400, MSG_NOTFOUND);
			return;
		}
	}
	if ((keys = calloc(n, sizeof(*keys))) == NULL) {
		kme_error(rep, req, 503, "out of memory");
		return;
	}
	qkd_pool_group_begin(k->k_pool);
	switch (qkd_pool_take(k->k_pool, master, req->kr_cn, ids, n, keys,
	    &bad)) {
	case QKD_TAKE_OK:
		for (i = 0; i < n; i++)
			log_info("dec_keys: key %s to slave %s from master %s",
			    keys[i].qk_id, req->kr_cn, master);
		kme_key_container(rep, keys, n);
		if ((l = qkd_links_find(k->k_links, master,
		    req->kr_cn)) != NULL) {
			rep->kp_link = l;
			rep->kp_delivered = n;
		}
		break;
	case QKD_TAKE_NOTFOUND:
		log_warnx("dec_keys: key %s unknown or already delivered",
		    ids[bad]);
		kme_error(rep, req, 400, MSG_NOTFOUND);
		break;
	case QKD_TAKE_DENIED:
		kme_error(rep, req, 401, "key %s was not issued by %s for %s",
		    ids[bad], master, req->kr_cn);
		break;
	case QKD_TAKE_ERROR:
		kme_error(rep, req, 503, "key store failure");
		break;
	}
	rep->kp_commit = 1;
	crypto_wipe(keys, n * sizeof(*keys));
	free(keys);
}

/* GET|POST /api/v1/keys/{master}/dec_keys */
static void
kme_dec_keys(struct kme *k, const struct kme_request *req, const char *master,
    struct kme_reply *rep)
{
	struct evkeyvalq	 q;
	json_t			*body = NULL;
	const char		*ids[1024], *v;
	int			 n;

	TAILQ_INIT(&q);
	if (req->kr_method == KME_POST)
		n = kme_dec_body(k, req, &body, ids, rep);
	else if (req->kr_query == NULL ||
	    evhttp_parse_query_str(req->kr_query, &q) == -1 ||
	    (v = evhttp_find_header(&q, "key_ID")) == NULL) {
		kme_error(rep, req, 400, "key_ID query parameter missing");
		n = -1;
	} else {
		ids[0] = v;
		n = 1;
	}
	if (n > 0)
		kme_dec_deliver(k, req, master, ids, (size_t)n, rep);
	evhttp_clear_headers(&q);
	json_decref(body);
}

/* Split path into at most MAXSEG non-empty segments in buf; n or -1. */
static int
kme_split(const char *path, char *buf, size_t buflen, char **seg)
{
	char	*p, *s;
	int	 n = 0;

	if (path == NULL || path[0] != '/' || strlen(path) >= buflen)
		return -1;
	snprintf(buf, buflen, "%s", path + 1);
	for (p = buf; p != NULL; p = s) {
		if ((s = strchr(p, '/')) != NULL)
			*s++ = '\0';
		if (*p == '\0' || n == MAXSEG)
			return -1;
		seg[n++] = p;
	}
	return n;
}

/* /api/v1/keys/{SAE_ID}/{status|enc_keys|dec_keys} */
static void
kme_keys(struct kme *k, const struct kme_request *req, const char *sae,
    const char *what, struct kme_reply *rep)
{
	int	is_status = strcmp(what, "status") == 0;

	if (!is_status && strcmp(what, "enc_keys") != 0 &&
	    strcmp(what, "dec_keys") != 0) {
		kme_error(rep, req, 404, "unknown path");
		return;
	}
	if (req->kr_method == KME_OTHER ||
	    (is_status && req->kr_method != KME_GET)) {
		kme_error(rep, req, 405, "method not allowed");
		return;
	}
	if (!kme_caller_ok(req, rep))
		return;
	if (!id_valid_name(sae)) {
		kme_error(rep, req, 400, "invalid SAE ID \"%.32s\"", sae);
		return;
	}
	if (is_status)
		kme_status(k, req, sae, rep);
	else if (strcmp(what, "enc_keys") == 0)
		kme_enc_keys(k, req, sae, rep);
	else
		kme_dec_keys(k, req, sae, rep);
}

/* Route a request by its path segments. */
void
kme_handle(struct kme *k, const struct kme_request *req,
    struct kme_reply *rep)
{
	char	 buf[MAXPATH], *seg[MAXSEG];
	int	 n;

	memset(rep, 0, sizeof(*rep));
	n = kme_split(req->kr_path, buf, sizeof(buf), seg);
	if (n == 5 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0 &&
	    strcmp(seg[2], "keys") == 0)
		kme_keys(k, req, seg[3], seg[4], rep);
	else if (n >= 3 && strcmp(seg[0], "admin") == 0 &&
	    strcmp(seg[1], "v1") == 0 && strcmp(seg[2], "links") == 0)
		kme_admin(k, req, seg + 3, (size_t)n - 3, rep);
	else
		kme_error(rep, req, 404, "unknown path");
}
