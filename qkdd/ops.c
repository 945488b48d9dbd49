/*
 * Operations view of qkdd: /status and /status/pools on the admin
 * endpoint, and the metrics of the KME (requests by endpoint and code,
 * keys delivered, the key store's commits) and of its links (pool levels
 * and capacity, QBER estimate and bound, state, aborted blocks).  Pool levels are the pool's counts in
 * memory: neither a scrape nor /status reads the store.  Nothing here
 * reads a key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bb84.h"
#include "metrics.h"
#include "ops.h"

#define OPS_MAXLIST	1000

static struct metric	*ops_pool_keys;
static struct metric	*ops_pool_capacity;
static struct metric	*ops_qber;
static struct metric	*ops_bound;
static struct metric	*ops_up;
static struct metric	*ops_delivered;
static struct metric	*ops_requests;
static struct metric	*ops_responses;
static struct metric	*ops_commits;

/* Unreserved keys of l's pool. */
static size_t
qkd_ops_level(struct kme *k, const struct qkd_link *l)
{
	return qkd_pool_available(k->k_pool, l->l_a, l->l_b);
}

/* Collector: the pool and QBER gauges of every link. */
static void
qkd_ops_collect(void *arg)
{
	struct kme		*k = arg;
	const struct qkd_link	*l;
	size_t			 i;

	metric_set(ops_commits, NULL, (double)qkd_pool_commits(k->k_pool));
	for (i = 0; i < qkd_links_count(k->k_links); i++) {
		l = qkd_links_at(k->k_links, i);
		metric_set(ops_pool_keys, l->l_label,
		    (double)qkd_ops_level(k, l));
		metric_set(ops_pool_capacity, l->l_label, (double)l->l_pool);
		if (l->l_has_estimate) {
			metric_set(ops_qber, l->l_label, l->l_est_qber);
			metric_set(ops_bound, l->l_label, l->l_est_bound);
		}
		metric_set(ops_up, l->l_label, l->l_aborting ? 0.0 : 1.0);
	}
}

void
qkd_ops_init(struct kme *k)
{
	ops_pool_keys = metric_gauge("qroam_key_pool_keys",
	    "Keys in the pool of a QKD link not yet reserved by enc_keys.",
	    "link");
	ops_pool_capacity = metric_gauge("qroam_key_pool_capacity",
	    "Keys the pool of a QKD link holds at most.", "link");
	ops_qber = metric_gauge("qroam_qkd_qber",
	    "QBER estimate of a link over the samples of its last blocks.",
	    "link");
	ops_bound = metric_gauge("qroam_qkd_qber_bound",
	    "Upper confidence bound (failure probability 1e-10) of the QBER "
	    "of a link over the samples of its last blocks; the link aborts "
	    "above 0.11.", "link");
	ops_up = metric_gauge("qroam_qkd_link_up",
	    "1 while a QKD link is up, 0 while it is aborting (enc_keys "
	    "answers 503).", "link");
	ops_delivered = metric_counter("qroam_keys_delivered_total",
	    "Keys handed to their slave SAE by dec_keys, after which the "
	    "KME forgets them.", "link");
	ops_requests = metric_counter("qroam_etsi_requests_total",
	    "HTTPS requests answered, by endpoint (status, enc_keys, "
	    "dec_keys, admin, other).", "endpoint");
	ops_responses = metric_counter("qroam_etsi_responses_total",
	    "HTTPS requests answered, by HTTP status code.", "code");
	ops_commits = metric_counter("qroam_key_store_commits_total",
	    "Transactions of the key store: a link tick's keys, or the "
	    "reservations and deliveries of a group of requests.", NULL);
	metrics_collector_add(qkd_ops_collect, k);
	qkd_ops_collect(k);
}

void
qkd_ops_free(struct kme *k)
{
	metrics_collector_remove(qkd_ops_collect, k);
}

/* One link of /status/pools. */
static json_t *
qkd_ops_pool_json(struct kme *k, const struct qkd_link *l)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:o, s:o, s:s, "
	    "s:f, s:b, s:f, s:I}",
	    "link", l->l_label,
	    "sae_a", l->l_a,
	    "sae_b", l->l_b,
	    "keys", (json_int_t)qkd_ops_level(k, l),
	    "capacity", (json_int_t)l->l_pool,
	    "key_bits", (json_int_t)k->k_conf->qc_key_size,
	    "eavesdropper", l->l_eve > 0.0,
	    "qber", l->l_has_estimate ? json_real(l->l_est_qber) :
	    json_real(l->l_qber),
	    "qber_bound", l->l_has_estimate ? json_real(l->l_est_bound) :
	    json_null(),
	    "state", qkd_link_state(l),
	    "key_rate_bps", l->l_secret_bps,
	    "aborting", l->l_aborting != 0,
	    "qber_max", BB84_QBER_MAX,
	    "aborts", (json_int_t)l->l_aborts);
}

/* Order links by label. */
static int
qkd_ops_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct qkd_link *const *)a)->l_label,
	    (*(const struct qkd_link *const *)b)->l_label);
}

/* /status/pools: every link by label, at most OPS_MAXLIST. */
static json_t *
qkd_ops_pools(struct kme *k)
{
	const struct qkd_link	**v;
	json_t			 *arr;
	size_t			  i, n = qkd_links_count(k->k_links);

	if ((arr = json_array()) == NULL ||
	    (v = calloc(n + 1, sizeof(*v))) == NULL) {
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < n; i++)
		v[i] = qkd_links_at(k->k_links, i);
	qsort(v, n, sizeof(*v), qkd_ops_cmp);
	for (i = 0; i < n && i < OPS_MAXLIST; i++)
		json_array_append_new(arr, qkd_ops_pool_json(k, v[i]));
	free(v);
	return arr;
}

json_t *
qkd_ops_status(void *arg, const char *what, json_t *obj)
{
	struct kme	*k = arg;
	json_int_t	 keys = 0;
	size_t		 i, n = qkd_links_count(k->k_links);

	if (what == NULL) {
		for (i = 0; i < n; i++)
			keys += (json_int_t)qkd_ops_level(k,
			    qkd_links_at(k->k_links, i));
		json_object_set_new(obj, "links", json_integer((json_int_t)n));
		json_object_set_new(obj, "pool_keys", json_integer(keys));
		return obj;
	}
	if (strcmp(what, "pools") == 0)
		return qkd_ops_pools(k);
	return NULL;
}

/* The endpoint of a request path, for the request counter. */
static const char *
qkd_ops_endpoint(const char *path)
{
	static const char *const	 names[] = { "status", "enc_keys",
	    "dec_keys" };
	const char			*last;
	size_t				 i;

	if (path == NULL)
		return "other";
	if (strncmp(path, "/admin/v1/links", 15) == 0 &&
	    (path[15] == '\0' || path[15] == '/'))
		return "admin";
	if (strncmp(path, "/api/v1/keys/", 13) != 0 ||
	    (last = strrchr(path, '/')) == path + 12)
		return "other";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(last + 1, names[i]) == 0 &&
		    memchr(path + 13, '/', last - (path + 13)) == NULL)
			return names[i];
	return "other";
}

/* The refusal reason of an HTTP status other than 200. */
static const char *
qkd_ops_reason(int status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 401:
		return "unauthorized";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 503:
		return "unavailable";
	default:
		return "internal";
	}
}

void
qkd_ops_request(const char *path, int status)
{
	char	code[16];

	snprintf(code, sizeof(code), "%d", status);
	metric_inc(ops_requests, qkd_ops_endpoint(path));
	metric_inc(ops_responses, code);
	if (status != 200)
		metrics_refusal(qkd_ops_reason(status));
}

void
qkd_ops_delivered(const struct qkd_link *l, size_t n)
{
	metric_add(ops_delivered, l->l_label, (double)n);
}
