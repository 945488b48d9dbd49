/*
 * F3, power-on authentication: an M4 carries AuthInner encrypted under the
 * vehicle's Pbv; the TSP holds the matching Prv from M2 (decoded once per
 * registration epoch and kept in prvcache.c).  A pass is stored
 * (nonce, auth row, the vehicle's old session ended) in one transaction,
 * then answered with an AuthResult signed with Prv so that the vehicle
 * authenticates the cloud too.
 *
 * The two RSA private operations would cap M4s at one core and stall the
 * telemetry of every session behind a burst of power-ons, so they run on
 * the worker pool (workq.h) in one hop: the worker decodes Prv if it was
 * not cached, decrypts and checks AuthInner, and already signs the
 * AuthResult, whose text (vehicle, TSP, nonce) is known before the store
 * step; the loop then stores the pass and sends the answer, or discards
 * the signature if the store refuses the nonce.  Refusals are rare, so a
 * second hop to sign after the store would only add a wake-up and a
 * queue wait to every M4.  The store steps are requests: the registration
 * read before the worker, read again after it (an M2 may have replaced
 * it meanwhile) and the pass stored; the task waits for each answer.
 */
#include <sys/queue.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "store.h"
#include "workq.h"

#include "tspd.h"

#define AUTH_MAX_CT	1024	/* RSA-8192 at most */
#define AUTH_ADDR_LEN	64	/* "[v6 address]:port" */

/*
 * One M4 from its arrival until it is answered.  Between workq_post and
 * the done function the worker reads the inputs and writes the results;
 * the fields marked (loop) are the loop thread's alone.
 */
struct auth_task {
	struct workq_task	 at_task;
	TAILQ_ENTRY(auth_task)	 at_entry;	/* (loop) M4s in flight */
	struct tspd		*at_env;	/* (loop) */
	struct conn		*at_conn;	/* (loop) NULL once it closed */
	struct tspdb_req	 at_rq;		/* (loop) */
	struct tspdb_reg	 at_now_reg;	/* (loop) as stored after */
	char			 at_addr[AUTH_ADDR_LEN];
	uint64_t		 at_request_id;

	/* Inputs. */
	Qroam__M4		*at_m4;
	struct tspdb_reg	 at_reg;
	EVP_PKEY		*at_prv;	/* NULL: decode at_reg's DER */
	char			 at_tsp_id[NAME_MAXLEN + 1];
	uint64_t		 at_now;
	uint64_t		 at_skew_ms;

	/* Results. */
	int			 at_decoded;	/* at_prv is the worker's */
	Qroam__AuthInner	*at_inner;
	uint8_t			*at_sig;
	size_t			 at_siglen;
	int			 at_code;
	const char		*at_reason;	/* why it was refused */
};

TAILQ_HEAD(auth_list, auth_task);

struct tspd_auth {
	struct workq		*ta_wq;
	struct auth_list	 ta_inflight;
	int			 ta_stopping;
};

static void	auth_work(void *);
static void	auth_done(void *, int);

void
tspd_auth_init(struct tspd *env)
{
	struct tspd_auth	*ta;
	int			 n = env->t_conf.tc_workers;

	if (n == TSPD_WORKERS_AUTO)
		n = (int)workq_online_cpus();
	ta = xcalloc(1, sizeof(*ta));
	TAILQ_INIT(&ta->ta_inflight);
	if ((ta->ta_wq = workq_new(env->t_base, (unsigned)n,
	    WORKQ_MAX_QUEUE)) == NULL)
		fatalx("cannot start %d worker threads", n);
	env->t_auth = ta;
	if (n > 0)
		log_info("F3 private-key work on %d worker threads", n);
	else
		log_info("F3 private-key work on the event loop");
}

void
tspd_auth_free(struct tspd *env)
{
	struct tspd_auth	*ta = env->t_auth;

	if (ta == NULL)
		return;
	ta->ta_stopping = 1;
	workq_free(ta->ta_wq);
	/* M4s waiting for the store finish or are refused. */
	tspd_store_drain(env);
	if (!TAILQ_EMPTY(&ta->ta_inflight))
		fatalx("M4s in flight after the worker pool stopped");
	free(ta);
	env->t_auth = NULL;
}

void
tspd_auth_conn_closed(struct tspd *env, struct conn *c)
{
	struct auth_task	*at;

	if (env->t_auth == NULL)
		return;
	TAILQ_FOREACH(at, &env->t_auth->ta_inflight, at_entry)
		if (at->at_conn == c)
			at->at_conn = NULL;
}

static void
auth_task_free(struct auth_task *at)
{
	TAILQ_REMOVE(&at->at_env->t_auth->ta_inflight, at, at_entry);
	tspdb_reg_clear(&at->at_reg);
	tspdb_reg_clear(&at->at_now_reg);
	EVP_PKEY_free(at->at_prv);
	if (at->at_inner != NULL)
		qroam__auth_inner__free_unpacked(at->at_inner, NULL);
	if (at->at_m4 != NULL)
		qroam__m4__free_unpacked(at->at_m4, NULL);
	free(at->at_sig);
	free(at);
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
 * Log and count a refused M4 and, if so configured and the connection is
 * still open, answer it with an AuthResult.
 */
static void
auth_refuse(struct tspd *env, const struct auth_task *at, int code,
    const char *reason)
{
	Qroam__AuthResult	 res = QROAM__AUTH_RESULT__INIT;

	log_warnx("auth refused vehicle=%s addr=%s reason=%s status=%s",
	    at->at_m4->vehicle_id, at->at_addr, reason, msg_status_name(code));
	metrics_refusal(auth_refusal_reason(code, reason));
	if (!env->t_conf.tc_auth_fail_reply || at->at_conn == NULL)
		return;
	res.code = code;
	conn_send(at->at_conn, QROAM__MSG_TYPE__MT_AUTH_RESULT,
	    at->at_request_id, &res.base);
}

/*
 * On a worker: decrypt the M4 with the vehicle's Prv and check its
 * contents (chip and TSP match, time within the skew).  Returns OK, or
 * the status to refuse with and at_reason set.
 */
static int
auth_verify(struct auth_task *at)
{
	const Qroam__AuthInner	*in;
	uint64_t		 diff;

	if (at->at_prv == NULL) {
		at->at_prv = crypto_priv_from_der(at->at_reg.r_prv,
		    at->at_reg.r_prvlen);
		if (at->at_prv == NULL) {
			at->at_reason = "stored private key unreadable";
			return QROAM__STATUS_CODE__INTERNAL;
		}
		at->at_decoded = 1;
	}
	at->at_inner = msg_m4_open(at->at_prv, at->at_m4->ct.data,
	    at->at_m4->ct.len, &at->at_reason);
	if ((in = at->at_inner) == NULL)
		return QROAM__STATUS_CODE__AUTH_FAILED;
	if (strcmp(in->chip_id, at->at_reg.r_chip_id) != 0) {
		at->at_reason = "chip_id mismatch";
		return QROAM__STATUS_CODE__AUTH_FAILED;
	}
	if (strcmp(in->tsp_id, at->at_tsp_id) != 0) {
		at->at_reason = "tsp_id mismatch";
		return QROAM__STATUS_CODE__AUTH_FAILED;
	}
	diff = in->unix_ms > at->at_now ? in->unix_ms - at->at_now :
	    at->at_now - in->unix_ms;
	if (diff > at->at_skew_ms) {
		at->at_reason = "stale";
		return QROAM__STATUS_CODE__STALE;
	}
	return QROAM__STATUS_CODE__OK;
}

/* On a worker: check the M4 and sign the AuthResult text of a pass. */
static void
auth_work(void *arg)
{
	struct auth_task	*at = arg;
	char			 text[MSG_AAD_MAX];

	if ((at->at_code = auth_verify(at)) != QROAM__STATUS_CODE__OK)
		return;
	if (msg_auth_text(text, sizeof(text), at->at_m4->vehicle_id,
	    at->at_tsp_id, at->at_inner->nonce.data) == -1 ||
	    crypto_pss_sign(at->at_prv, text, strlen(text), &at->at_sig,
	    &at->at_siglen) == -1) {
		at->at_code = QROAM__STATUS_CODE__INTERNAL;
		at->at_reason = "signing failed";
	}
}

/* The store answered the pass: answer the vehicle. */
static void
auth_stored(struct tspdb_req *rq)
{
	struct auth_task	*at = rq->rq_arg;
	struct tspd		*env = at->at_env;
	Qroam__AuthResult	 res = QROAM__AUTH_RESULT__INIT;
	const char		*vid = at->at_m4->vehicle_id;

	switch (rq->rq_result) {
	case TSPDB_OK:
		res.code = QROAM__STATUS_CODE__OK;
		res.has_nonce = 1;
		res.nonce = at->at_inner->nonce;
		res.has_sig = 1;
		res.sig.data = at->at_sig;
		res.sig.len = at->at_siglen;
		if (at->at_conn != NULL)
			conn_send(at->at_conn, QROAM__MSG_TYPE__MT_AUTH_RESULT,
			    at->at_request_id, &res.base);
		log_info("auth ok vehicle=%s chip=%s addr=%s%s", vid,
		    at->at_reg.r_chip_id, at->at_addr, at->at_conn == NULL ?
		    " (connection closed before the answer)" : "");
		break;
	case TSPDB_REPLAY:
		auth_refuse(env, at, QROAM__STATUS_CODE__AUTH_FAILED,
		    "nonce replayed");
		break;
	default:
		auth_refuse(env, at, QROAM__STATUS_CODE__INTERNAL,
		    "store error");
		break;
	}
	auth_task_free(at);
}

/* Refuse an M4 whose registration could not be read; 1 if so. */
static int
auth_reg_missing(struct auth_task *at, enum tspdb_result r)
{
	if (r == TSPDB_OK)
		return 0;
	auth_refuse(at->at_env, at, r == TSPDB_UNKNOWN ?
	    QROAM__STATUS_CODE__AUTH_FAILED : QROAM__STATUS_CODE__INTERNAL,
	    r == TSPDB_UNKNOWN ? "unknown vehicle" : "store error");
	auth_task_free(at);
	return 1;
}

/*
 * The registration stored now: if it is still the one the M4 was checked
 * against (an M2 may have replaced it while the worker had the M4), store
 * the pass.
 */
static void
auth_reg_checked(struct tspdb_req *rq)
{
	struct auth_task	*at = rq->rq_arg;
	struct tspd		*env = at->at_env;
	uint64_t		 skew = env->t_conf.tc_auth_skew_ms;

	if (auth_reg_missing(at, rq->rq_result))
		return;
	if (at->at_now_reg.r_epoch != at->at_reg.r_epoch ||
	    strcmp(at->at_now_reg.r_chip_id, at->at_reg.r_chip_id) != 0) {
		auth_refuse(env, at, QROAM__STATUS_CODE__AUTH_FAILED,
		    "registration replaced");
		auth_task_free(at);
		return;
	}
	tspdb_req_init(&at->at_rq, auth_stored, at);
	tspdb_auth_commit(env->t_db, at->at_m4->vehicle_id,
	    at->at_reg.r_chip_id, at->at_inner->nonce.data,
	    at->at_inner->nonce.len, at->at_now, at->at_now + 2 * skew, "f3",
	    &at->at_rq);
}

/*
 * On the loop: the worker is through with the M4.  A key it decoded joins
 * the cache; a pass is stored and answered, a refusal logged.  The store
 * step runs even if the connection closed meanwhile, as it would have
 * had the M4 been handled at once; only the answer is then dropped.
 */
static void
auth_done(void *arg, int ran)
{
	struct auth_task	*at = arg;
	struct tspd		*env = at->at_env;

	if (!ran) {
		log_debug("auth vehicle=%s addr=%s: dropped, the TSP is "
		    "stopping", at->at_m4->vehicle_id, at->at_addr);
		auth_task_free(at);
		return;
	}
	/* Harmless even if the registration changed: the epoch tells. */
	if (at->at_decoded)
		tspd_prv_put(env, at->at_m4->vehicle_id, at->at_reg.r_epoch,
		    at->at_prv);
	if (at->at_code != QROAM__STATUS_CODE__OK) {
		auth_refuse(env, at, at->at_code, at->at_reason);
		auth_task_free(at);
		return;
	}
	tspdb_req_init(&at->at_rq, auth_reg_checked, at);
	tspdb_reg_get(env->t_db, at->at_m4->vehicle_id, &at->at_now_reg,
	    &at->at_rq);
}

/*
 * The registration the M4 names, from the store: with its Prv (cached, or
 * decoded by the worker) the worker checks the M4 and signs the answer.
 */
static void
auth_reg_loaded(struct tspdb_req *rq)
{
	struct auth_task	*at = rq->rq_arg;
	struct tspd		*env = at->at_env;

	if (auth_reg_missing(at, rq->rq_result))
		return;
	at->at_prv = tspd_prv_lookup(env, at->at_m4->vehicle_id,
	    at->at_reg.r_epoch);
	if (env->t_auth == NULL || env->t_auth->ta_stopping ||
	    workq_post(env->t_auth->ta_wq, &at->at_task) == -1) {
		auth_refuse(env, at, QROAM__STATUS_CODE__INTERNAL,
		    "the TSP is stopping");
		auth_task_free(at);
	}
}

/* A task for a well-formed M4 on c, or NULL if out of memory. */
static struct auth_task *
auth_task_new(struct tspd *env, struct conn *c, const struct frame *f,
    Qroam__M4 *m4)
{
	struct auth_task	*at;

	if ((at = calloc(1, sizeof(*at))) == NULL)
		return NULL;
	at->at_task.wt_work = auth_work;
	at->at_task.wt_done = auth_done;
	at->at_task.wt_arg = at;
	at->at_env = env;
	at->at_conn = c;
	TAILQ_INSERT_TAIL(&env->t_auth->ta_inflight, at, at_entry);
	snprintf(at->at_addr, sizeof(at->at_addr), "%s", conn_peer_addr(c));
	at->at_request_id = f->f_request_id;
	at->at_m4 = m4;
	snprintf(at->at_tsp_id, sizeof(at->at_tsp_id), "%s", env->t_id);
	at->at_now = store_now_ms();
	at->at_skew_ms = env->t_conf.tc_auth_skew_ms;
	return at;
}

void
tspd_auth_m4(struct tspd *env, struct conn *c, const struct frame *f)
{
	struct auth_task	*at;
	Qroam__M4		*m4;

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
	if (env->t_auth == NULL || env->t_auth->ta_stopping) {
		/* An M4 read while the TSP stops: its worker pool is gone. */
		log_warnx("auth refused vehicle=%s addr=%s reason=the TSP is "
		    "stopping", m4->vehicle_id, conn_peer_addr(c));
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__UNAVAILABLE, "the TSP is stopping");
		qroam__m4__free_unpacked(m4, NULL);
		return;
	}
	if ((at = auth_task_new(env, c, f, m4)) == NULL) {
		log_warn("auth vehicle=%s addr=%s", m4->vehicle_id,
		    conn_peer_addr(c));
		qroam__m4__free_unpacked(m4, NULL);
		return;
	}
	if (m4->ct.len == 0 || m4->ct.len > AUTH_MAX_CT) {
		auth_refuse(env, at, QROAM__STATUS_CODE__AUTH_FAILED,
		    "bad ciphertext length");
		auth_task_free(at);
		return;
	}
	tspdb_req_init(&at->at_rq, auth_reg_loaded, at);
	tspdb_reg_get(env->t_db, m4->vehicle_id, &at->at_reg, &at->at_rq);
}
