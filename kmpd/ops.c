/*
 * kmpd's operations interface: its part of the admin endpoint's /status
 * (identities by kind, sessions, parties served, applications waiting
 * for a key; /status/sessions lists the sessions still holding a key) and
 * its metrics.  Refusals are counted by reason in qroam_refusals_total.
 * Neither view ever shows a key.
 */
#include <string.h>

#include "kmp.h"
#include "metrics.h"

#define KMP_STATUS_MAX	1000	/* entries of a /status list at most */

static struct metric	*m_issued, *m_qkeys, *m_complete, *m_pending;
static struct metric	*m_ident, *m_open;

static void
kmp_ops_collect(void *arg)
{
	struct kmp		*k = arg;
	struct kmp_db_counts	 c;

	metric_set(m_pending, NULL, (double)k->k_npending);
	if (k->k_db == NULL || kmp_db_counts(k->k_db, &c) == -1)
		return;
	metric_set(m_ident, KMP_KIND_VEHICLE, (double)c.kc_vehicles);
	metric_set(m_ident, KMP_KIND_ENCRYPTOR, (double)c.kc_encryptors);
	metric_set(m_open, NULL, (double)c.kc_sessions_open);
}

static void
kmp_ops_metrics(void)
{
	if (m_issued != NULL)
		return;
	m_issued = metric_counter("qroam_kmp_keys_issued_total",
	    "Session keys issued, by the kind of party served.", "kind");
	m_qkeys = metric_counter("qroam_kmp_quantum_keys_total",
	    "Quantum keys taken from the key source for a new session.", NULL);
	m_complete = metric_counter("qroam_kmp_sessions_complete_total",
	    "Sessions whose two parties were both served.", NULL);
	m_pending = metric_gauge("qroam_kmp_applications_waiting",
	    "Applications waiting for the key source.", NULL);
	m_ident = metric_gauge("qroam_kmp_identities",
	    "Identities with an initial key, by kind.", "kind");
	m_open = metric_gauge("qroam_kmp_sessions_open",
	    "Sessions whose key is kept for a party yet to fetch it.", NULL);
	metric_add(m_issued, KMP_KIND_VEHICLE, 0);
	metric_add(m_issued, KMP_KIND_ENCRYPTOR, 0);
}

void
kmp_ops_init(struct kmp *k)
{
	kmp_ops_metrics();
	metrics_collector_add(kmp_ops_collect, k);
}

void
kmp_ops_free(struct kmp *k)
{
	metrics_collector_remove(kmp_ops_collect, k);
}

void
kmp_metric_issued(const char *kind, int complete, int new_key)
{
	kmp_ops_metrics();
	metric_inc(m_issued, kind);
	if (new_key)
		metric_inc(m_qkeys, NULL);
	if (complete)
		metric_inc(m_complete, NULL);
}

json_t *
kmp_status(void *arg, const char *what, json_t *obj)
{
	struct kmp		*k = arg;
	struct kmp_db_counts	 c;

	if (what == NULL) {
		json_object_set_new(obj, "key_source",
		    json_string(keysrc_name(k->k_keys)));
		json_object_set_new(obj, "applications_waiting",
		    json_integer((json_int_t)k->k_npending));
		if (kmp_db_counts(k->k_db, &c) == -1)
			return obj;
		json_object_set_new(obj, "identities", json_pack("{s:I, s:I}",
		    KMP_KIND_VEHICLE, (json_int_t)c.kc_vehicles,
		    KMP_KIND_ENCRYPTOR, (json_int_t)c.kc_encryptors));
		json_object_set_new(obj, "sessions",
		    json_integer(c.kc_sessions));
		json_object_set_new(obj, "sessions_open",
		    json_integer(c.kc_sessions_open));
		json_object_set_new(obj, "keys_issued",
		    json_integer(c.kc_issued));
		return obj;
	}
	if (strcmp(what, "sessions") == 0)
		return kmp_db_open_sessions(k->k_db, KMP_STATUS_MAX);
	return NULL;
}
