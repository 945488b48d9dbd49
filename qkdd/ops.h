/*
 * qkdd's part of the admin endpoint: the /status views (links and pool
 * levels, never a key) and the Prometheus metrics of the KME and its
 * links.  Link labels are "sae_a/sae_b", the pair in store order, as in
 * the link administration paths.
 */
#ifndef QKDD_OPS_H
#define QKDD_OPS_H

#include <stddef.h>
#include <jansson.h>

#include "kme.h"

/*
 * Register the metrics and the pool gauges' collector over k.  qkd_http_new
 * calls it before it listens, so no request reaches the metrics unset.
 */
void	qkd_ops_init(struct kme *);
/* Remove the collector (before k goes away). */
void	qkd_ops_free(struct kme *);

/*
 * The admin endpoint's /status callback (admin_status_cb), arg a struct
 * kme: links and pool_keys; /status/pools: one entry per link by label.
 */
json_t	*qkd_ops_status(void *arg, const char *what, json_t *obj);

/*
 * Count one answered HTTPS request: qroam_etsi_requests_total by
 * endpoint (status, enc_keys, dec_keys, admin, other) and
 * qroam_etsi_responses_total by HTTP code (metrics have one label);
 * every answer but 200 also counts as a refusal by reason.
 */
void	qkd_ops_request(const char *path, int status);

/* n keys of link l handed to its slave (dec_keys). */
void	qkd_ops_delivered(const struct qkd_link *, size_t n);

#endif
