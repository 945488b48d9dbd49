/*
 * F3, power-on authentication: an M4 carries AuthInner encrypted under the
 * vehicle's Pbv; the TSP holds the matching Prv from M2 (decoded once per
 * registration epoch and kept in prvcache.c).  A pass is stored
 * (nonce, auth row, the vehicle's old session ended) in one transaction,
 * then answered with an AuthResult signed with Prv so that the vehicle
 * authenticates the cloud too.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "store.h"

#include "tspd.h"

#define AUTH_MAX_CT	1024	/* RSA-8192 at most */

/* One M4 being checked. */
struct auth_req {
	const char		*ar_vid;
	struct tspdb_reg	 ar_reg;
	EVP_PKEY		*ar_prv;
	Qroam__AuthInner	*ar_inner;
	uint64_t		 ar_now;
	const char		*ar_reason;	/* why it was refused */
};

static void
auth_req_free(struct auth_req *ar)
{
	tspdb_reg_clear(&ar->ar_reg);
	EVP_PKEY_free(ar->ar_prv);
	if (ar->ar_inner != NULL)
		qroam__auth_inner__free_unpacked(ar->ar_inner, NULL);
}

/* The refusals_total reason of a refused M4 (no Status is sent for it). */
static const char *
auth_refusal_reason(int code, const char *reason)
{
	if (strcmp(reason, "nonce replayed") == 0)
		return "nonce_replayed";
	switch (code) {
	case QROAM__STATUS_CODE__STALE:
		return "auth_stale";
	case QROAM__STATUS_CODE__INTERNAL:
		return "auth_internal";
	default:
		return "auth_failed";
	}
}

/*
 * Log and count a refused M4 and, if so configured, answer it with an
 * AuthResult.
 */
static void
auth_refuse(struct tspd *env, struct conn *c, const struct frame *f,
    const char *vid, int code, const char *reason)
{
	Qroam__AuthResult	 res = QROAM__AUTH_RESULT__INIT;

	log_warnx("auth refused vehicle=%s addr=%s reason=%s status=%s",
	    vid, conn_peer_addr(c), reason, msg_status_name(code));
	metrics_refusal(auth_refusal_reason(code, reason));
	if (!env->t_conf.tc_auth_fail_reply)
		return;
	res.code = code;
	conn_send(c, QROAM__MSG_TYPE__MT_AUTH_RESULT, f->f_request_id,
	    &res.base);
}

/*
 * Decrypt an M4 with the vehicle's Prv and check its contents: chip and
 * TSP match, time within the skew.  Returns OK, or the status to refuse
 * with and ar_reason set.
 */
static int
auth_verify(struct tspd *env, const Qroam__M4 *m4, struct auth_req *ar)
{
	const Qroam__AuthInner	*in;
	uint64_t		 diff;
	int			 r;

	if (m4->ct.len == 0 || m4->ct.len > AUTH_MAX_CT) {
		ar->ar_reason = "bad ciphertext length";
		return QROAM__STATUS_CODE__AUTH_FAILED;
	}
	if ((r = tspdb_reg_get(env->t_db, ar->ar_vid, &ar->ar_reg)) != 1) {
		ar->ar_reason = r == 0 ? "unknown vehicle" : "store error";
		return r == 0 ? QROAM__STATUS_CODE__AUTH_FAILED :
		    QROAM__STATUS_CODE__INTERNAL;
	}
	ar->ar_prv = tspd_prv_get(env, ar->ar_vid, &ar->ar_reg);
	if (ar->ar_prv == NULL) {
		ar->ar_reason = "stored private key unreadable";
		return QROAM__STATUS_CODE__INTERNAL;
	}
	ar->ar_inner = msg_m4_open(ar->ar_prv, m4->ct.data, m4->ct.len);
	if ((in = ar->ar_inner) == NULL) {
		ar->ar_reason = "does not decrypt";
		return QROAM__STATUS_CODE__AUTH_FAILED;
	}
	if (strcmp(in->chip_id, ar->ar_reg.r_chip_id) != 0) {
		ar->ar_reason = "chip_id mismatch";
		return QROAM__STATUS_CODE__AUTH_FAILED;
	}
	if (strcmp(in->tsp_id, env->t_id) != 0) {
		ar->ar_reason = "tsp_id mismatch";
		return QROAM__STATUS_CODE__AUTH_FAILED;
	}
	diff = in->unix_ms > ar->ar_now ? in->unix_ms - ar->ar_now :
	    ar->ar_now - in->unix_ms;
	if (diff > env->t_conf.tc_auth_skew_ms) {
		ar->ar_reason = "stale";
		return QROAM__STATUS_CODE__STALE;
	}
	return QROAM__STATUS_CODE__OK;
}

/* Sign the AuthResult text for ar; 0 and *sig malloc'd, or -1. */
static int
auth_sign(struct tspd *env, const struct auth_req *ar, uint8_t **sig,
    size_t *siglen)
{
	char	 text[MSG_AAD_MAX];

	if (msg_auth_text(text, sizeof(text), ar->ar_vid, env->t_id,
	    ar->ar_inner->nonce.data) == -1)
		return -1;
	return crypto_pss_sign(ar->ar_prv, text, strlen(text), sig, siglen);
}

/* Store a verified authentication and answer it. */
static void
auth_accept(struct tspd *env, struct conn *c, const struct frame *f,
    struct auth_req *ar)
{
	Qroam__AuthResult	 res = QROAM__AUTH_RESULT__INIT;
	uint8_t			*sig = NULL;
	size_t			 siglen = 0;
	uint64_t		 skew = env->t_conf.tc_auth_skew_ms;

	if (auth_sign(env, ar, &sig, &siglen) == -1) {
		auth_refuse(env, c, f, ar->ar_vid, QROAM__STATUS_CODE__INTERNAL,
		    "signing failed");
		return;
	}
	switch (tspdb_auth_commit(env->t_db, ar->ar_vid, ar->ar_reg.r_chip_id,
	    ar->ar_inner->nonce.data, ar->ar_inner->nonce.len, ar->ar_now,
	    ar->ar_now + 2 * skew, "f3")) {
	case TSPDB_OK:
		res.code = QROAM__STATUS_CODE__OK;
		res.has_nonce = 1;
		res.nonce = ar->ar_inner->nonce;
		res.has_sig = 1;
		res.sig.data = sig;
		res.sig.len = siglen;
		conn_send(c, QROAM__MSG_TYPE__MT_AUTH_RESULT, f->f_request_id,
		    &res.base);
		log_info("auth ok vehicle=%s chip=%s addr=%s", ar->ar_vid,
		    ar->ar_reg.r_chip_id, conn_peer_addr(c));
		break;
	case TSPDB_REPLAY:
		auth_refuse(env, c, f, ar->ar_vid,
		    QROAM__STATUS_CODE__AUTH_FAILED, "nonce replayed");
		break;
	default:
		auth_refuse(env, c, f, ar->ar_vid, QROAM__STATUS_CODE__INTERNAL,
		    "store error");
		break;
	}
	free(sig);
}

void
tspd_auth_m4(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__M4	*m4;
	struct auth_req	 ar;
	int		 code;

	m4 = (Qroam__M4 *)frame_unpack(f, &qroam__m4__descriptor);
	if (m4 == NULL || !id_valid_vin(m4->vehicle_id)) {
		log_warnx("auth refused vehicle=(invalid) addr=%s reason=%s",
		    conn_peer_addr(c), m4 == NULL ? "malformed M4" :
		    "bad vehicle_id");
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST,
		    m4 == NULL ? "malformed M4" : "bad vehicle_id");
		if (m4 != NULL)
			qroam__m4__free_unpacked(m4, NULL);
		return;
	}
	memset(&ar, 0, sizeof(ar));
	ar.ar_vid = m4->vehicle_id;
	ar.ar_now = store_now_ms();
	if ((code = auth_verify(env, m4, &ar)) != QROAM__STATUS_CODE__OK)
		auth_refuse(env, c, f, ar.ar_vid, code, ar.ar_reason);
	else
		auth_accept(env, c, f, &ar);
	auth_req_free(&ar);
	qroam__m4__free_unpacked(m4, NULL);
}
