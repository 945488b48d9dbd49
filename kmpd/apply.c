/*
 * Applications for a session key (PROTOCOL 11.1, doc/protocol.md "The key
 * management platform").  An application is checked in this order, and
 * the first failure refuses it with nothing written: a well-formed
 * KmpApply, a known identity of the listener's kind, a seal that opens
 * under the identity's initial key (inner identity and session_id equal
 * to the clear ones), a time within max_skew of ours, a nonce never seen
 * in a served application of that identity, and a session whose slot of
 * that kind is free.  Then the session's key is the one kept for it (the
 * other party was served) or a new quantum key from the key source; the
 * party is served in one transaction and its KmpKey leaves once that
 * transaction is durable.  The checks run again when the key source
 * answers, since the loop served other applications meanwhile.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "kmp.h"
#include "log.h"
#include "msg.h"
#include "store.h"

/* An application waiting for the key source. */
struct kmp_apply {
	TAILQ_ENTRY(kmp_apply)	 ka_entry;
	struct kmp		*ka_kmp;
	struct conn		*ka_conn;
	uint64_t		 ka_reqid;
	char			 ka_identity[KMP_IDENTITY_MAX + 1];
	char			 ka_session[NAME_MAXLEN + 1];
	const char		*ka_kind;
	uint8_t			 ka_ik[32];
	uint8_t			 ka_nonce[MSG_KMP_NONCELEN];
	uint64_t		 ka_time_ms;
};

/* Why a refusal: the metrics reason, the StatusCode, the text. */
struct kmp_why {
	const char	*kw_reason;
	int		 kw_code;
	char		 kw_text[160];
};

static void
kmp_why(struct kmp_why *w, const char *reason, int code, const char *text)
{
	w->kw_reason = reason;
	w->kw_code = code;
	snprintf(w->kw_text, sizeof(w->kw_text), "%s", text);
}

static void
kmp_apply_free(struct kmp_apply *ka)
{
	crypto_wipe(ka->ka_ik, sizeof(ka->ka_ik));
	conn_unref(ka->ka_conn);
	free(ka);
}

/*
 * The checks that depend on the store as it is now (nonce and slot).
 * 0, or -1 with w filled in.
 */
static int
kmp_check_state(struct kmp *k, const struct kmp_apply *ka, struct kmp_why *w)
{
	int	rc;

	if ((rc = kmp_db_nonce_seen(k->k_db, ka->ka_identity,
	    ka->ka_nonce)) != 0) {
		kmp_why(w, rc == 1 ? "kmp_replay" : "kmp_store",
		    rc == 1 ? QROAM__STATUS_CODE__KEY_REUSED :
		    QROAM__STATUS_CODE__INTERNAL, rc == 1 ?
		    "replayed application: nonce seen before" : "store error");
		return -1;
	}
	if ((rc = kmp_db_slot(k->k_db, ka->ka_session, ka->ka_kind,
	    ka->ka_identity)) == 0)
		return 0;
	if (rc == 1)
		kmp_why(w, "kmp_served", QROAM__STATUS_CODE__KEY_REUSED,
		    "session_id already served to this identity");
	else if (rc == 2)
		kmp_why(w, "kmp_session_taken", QROAM__STATUS_CODE__AUTH_FAILED,
		    "session_id already served to another identity of this "
		    "kind");
	else
		kmp_why(w, "kmp_store", QROAM__STATUS_CODE__INTERNAL,
		    "store error");
	return -1;
}

/* Serve ka with key: store it, then answer (held until durable). */
static void
kmp_serve(struct kmp *k, struct kmp_apply *ka, const uint8_t key[32],
    const char *key_id, int new_key)
{
	Qroam__KmpKey		 out = QROAM__KMP_KEY__INIT;
	struct kmp_issue	 is;
	uint64_t		 now = store_now_ms();
	int			 complete;

	if (msg_kmp_key_seal(ka->ka_ik, ka->ka_identity, ka->ka_session, key,
	    ka->ka_nonce, &out) == -1) {
		kmp_refuse(ka->ka_conn, ka->ka_reqid, "KmpApply", "kmp_internal",
		    QROAM__STATUS_CODE__INTERNAL, "cannot seal the answer");
		return;
	}
	memset(&is, 0, sizeof(is));
	is.is_session_id = ka->ka_session;
	is.is_identity = ka->ka_identity;
	is.is_kind = ka->ka_kind;
	is.is_nonce = ka->ka_nonce;
	is.is_key = key;
	is.is_key_id = key_id;
	is.is_now_ms = now;
	is.is_prune_ms = now - 2 * k->k_conf->kc_max_skew_ms - 1000;
	if (kmp_db_issue(k->k_db, &is, &complete) == -1) {
		kmp_refuse(ka->ka_conn, ka->ka_reqid, "KmpApply", "kmp_store",
		    QROAM__STATUS_CODE__INTERNAL, "store error");
		msg_kmp_clear(&out.iv, &out.ct);
		return;
	}
	conn_send(ka->ka_conn, QROAM__MSG_TYPE__MT_KMP_KEY, ka->ka_reqid,
	    &out.base);
	msg_kmp_clear(&out.iv, &out.ct);
	kmp_metric_issued(ka->ka_kind, complete, new_key);
	log_info("session %s: key %s issued to %s %s%s", ka->ka_session,
	    key_id, ka->ka_kind, ka->ka_identity,
	    complete ? "; both parties served, key wiped from the store" : "");
}

/* The key source answered ka's request. */
static void
kmp_apply_key(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct kmp_apply	*ka = arg;
	struct kmp		*k = ka->ka_kmp;
	struct kmp_why		 w;
	uint8_t			 key[32];
	char			 key_id[KEYSRC_IDMAX + 1];
	int			 rc;

	TAILQ_REMOVE(&k->k_pending, ka, ka_entry);
	k->k_npending--;
	if (res != KEYSRC_OK || n != 1) {
		log_warnx("session %s: no key from the %s: %s", ka->ka_session,
		    keysrc_name(k->k_keys), why != NULL ? why : "no key");
		kmp_refuse(ka->ka_conn, ka->ka_reqid, "KmpApply", "kmp_no_key",
		    QROAM__STATUS_CODE__UNAVAILABLE, "no quantum key available");
	} else if (kmp_check_state(k, ka, &w) == -1)
		kmp_refuse(ka->ka_conn, ka->ka_reqid, "KmpApply", w.kw_reason,
		    w.kw_code, w.kw_text);
	else if ((rc = kmp_db_session_key(k->k_db, ka->ka_session, key, key_id,
	    sizeof(key_id))) == 1) {
		/* The other party was served meanwhile: its key, ours unused. */
		kmp_serve(k, ka, key, key_id, 0);
		crypto_wipe(key, sizeof(key));
	} else if (rc == 0)
		kmp_serve(k, ka, keys[0].kk_key, keys[0].kk_id, 1);
	else
		kmp_refuse(ka->ka_conn, ka->ka_reqid, "KmpApply", "kmp_store",
		    QROAM__STATUS_CODE__INTERNAL, "store error");
	kmp_apply_free(ka);
}

/*
 * The checks of the application itself: 0 with ka filled in, or -1 with
 * w.  ka->ka_kind is the listener's kind.
 */
static int
kmp_check_apply(struct kmp *k, const Qroam__KmpApply *a, struct kmp_apply *ka,
    struct kmp_why *w)
{
	Qroam__KmpApplyInner	*in;
	struct kmp_identity	 ki;
	uint64_t		 now, skew;
	int			 rc;

	if (!kmp_valid_identity(a->identity) || !id_valid_name(a->session_id)) {
		kmp_why(w, "kmp_malformed", QROAM__STATUS_CODE__BAD_REQUEST,
		    "identity or session_id is not a valid name");
		return -1;
	}
	if ((rc = kmp_db_identity(k->k_db, a->identity, &ki)) != 1) {
		kmp_why(w, rc == 0 ? "kmp_unknown_identity" : "kmp_store",
		    rc == 0 ? QROAM__STATUS_CODE__AUTH_FAILED :
		    QROAM__STATUS_CODE__INTERNAL,
		    rc == 0 ? "unknown identity" : "store error");
		return -1;
	}
	if (strcmp(ki.ki_kind, ka->ka_kind) != 0) {
		crypto_wipe(&ki, sizeof(ki));
		kmp_why(w, "kmp_kind", QROAM__STATUS_CODE__AUTH_FAILED,
		    "identity is not of the kind this listener serves");
		return -1;
	}
	in = msg_kmp_apply_open(ki.ki_ik, a);
	memcpy(ka->ka_ik, ki.ki_ik, sizeof(ka->ka_ik));
	crypto_wipe(&ki, sizeof(ki));
	if (in == NULL) {
		kmp_why(w, "kmp_decrypt", QROAM__STATUS_CODE__DECRYPT_FAILED,
		    "application does not open under the identity's initial "
		    "key");
		return -1;
	}
	snprintf(ka->ka_identity, sizeof(ka->ka_identity), "%s", a->identity);
	snprintf(ka->ka_session, sizeof(ka->ka_session), "%s", a->session_id);
	memcpy(ka->ka_nonce, in->nonce.data, MSG_KMP_NONCELEN);
	ka->ka_time_ms = in->time_ms;
	qroam__kmp_apply_inner__free_unpacked(in, NULL);
	now = store_now_ms();
	skew = now > ka->ka_time_ms ? now - ka->ka_time_ms :
	    ka->ka_time_ms - now;
	if (skew > k->k_conf->kc_max_skew_ms) {
		snprintf(w->kw_text, sizeof(w->kw_text), "stale application: "
		    "time %llums from ours, max_skew %llums",
		    (unsigned long long)skew,
		    (unsigned long long)k->k_conf->kc_max_skew_ms);
		w->kw_reason = "kmp_stale";
		w->kw_code = QROAM__STATUS_CODE__STALE;
		return -1;
	}
	return kmp_check_state(k, ka, w);
}

/* Serve from the key kept for the session, or ask the key source. */
static int
kmp_apply_start(struct kmp *k, struct kmp_apply *ka, struct kmp_why *w)
{
	uint8_t	 key[32];
	char	 key_id[KEYSRC_IDMAX + 1];
	int	 rc;

	if ((rc = kmp_db_session_key(k->k_db, ka->ka_session, key, key_id,
	    sizeof(key_id))) == 1) {
		kmp_serve(k, ka, key, key_id, 0);
		crypto_wipe(key, sizeof(key));
		kmp_apply_free(ka);
		return 0;
	}
	if (rc == -1) {
		kmp_why(w, "kmp_store", QROAM__STATUS_CODE__INTERNAL,
		    "store error");
		return -1;
	}
	if (k->k_npending >= KMP_MAX_PENDING) {
		kmp_why(w, "kmp_busy", QROAM__STATUS_CODE__UNAVAILABLE,
		    "too many applications waiting for a key");
		return -1;
	}
	TAILQ_INSERT_TAIL(&k->k_pending, ka, ka_entry);
	k->k_npending++;
	if (keysrc_get_keys(k->k_keys, k->k_conf->kc_key_peer, 1,
	    kmp_apply_key, ka) == -1) {
		TAILQ_REMOVE(&k->k_pending, ka, ka_entry);
		k->k_npending--;
		kmp_why(w, "kmp_no_key", QROAM__STATUS_CODE__UNAVAILABLE,
		    "cannot ask the key source");
		return -1;
	}
	return 0;
}

void
kmp_apply(struct kmp *k, struct conn *c, const struct frame *f,
    const char *kind)
{
	Qroam__KmpApply		*a;
	struct kmp_apply	*ka;
	struct kmp_why		 w;

	a = (Qroam__KmpApply *)frame_unpack(f, &qroam__kmp_apply__descriptor);
	if (a == NULL) {
		kmp_refuse(c, f->f_request_id, "KmpApply", "kmp_malformed",
		    QROAM__STATUS_CODE__BAD_REQUEST, "malformed KmpApply");
		return;
	}
	if ((ka = calloc(1, sizeof(*ka))) == NULL) {
		qroam__kmp_apply__free_unpacked(a, NULL);
		kmp_refuse(c, f->f_request_id, "KmpApply", "kmp_internal",
		    QROAM__STATUS_CODE__INTERNAL, "out of memory");
		return;
	}
	ka->ka_kmp = k;
	ka->ka_conn = c;
	conn_ref(c);
	ka->ka_reqid = f->f_request_id;
	ka->ka_kind = kind;
	if (kmp_check_apply(k, a, ka, &w) == -1 ||
	    kmp_apply_start(k, ka, &w) == -1) {
		kmp_refuse(c, f->f_request_id, "KmpApply", w.kw_reason,
		    w.kw_code, w.kw_text);
		kmp_apply_free(ka);
	}
	qroam__kmp_apply__free_unpacked(a, NULL);
}

void
kmp_apply_conn_closed(struct kmp *k, struct conn *c)
{
	struct kmp_apply	*ka, *next;

	for (ka = TAILQ_FIRST(&k->k_pending); ka != NULL; ka = next) {
		next = TAILQ_NEXT(ka, ka_entry);
		if (ka->ka_conn != c)
			continue;
		keysrc_cancel(k->k_keys, kmp_apply_key, ka);
		TAILQ_REMOVE(&k->k_pending, ka, ka_entry);
		k->k_npending--;
		log_info("session %s: %s %s left before its key came",
		    ka->ka_session, ka->ka_kind, ka->ka_identity);
		kmp_apply_free(ka);
	}
}

void
kmp_apply_shutdown(struct kmp *k)
{
	struct kmp_apply	*ka;

	while ((ka = TAILQ_FIRST(&k->k_pending)) != NULL) {
		if (k->k_keys != NULL)
			keysrc_cancel(k->k_keys, kmp_apply_key, ka);
		TAILQ_REMOVE(&k->k_pending, ka, ka_entry);
		k->k_npending--;
		kmp_apply_free(ka);
	}
}
