/*
 * The provisioning listener (mutual TLS): fill records from fillerd (F1),
 * M2 registrations from registrard (F2), and the handover's A2 from
 * schedd and M8 from another TSP (F6, handover_in.c).  F1 and F2 arrive
 * at least once through the senders' outboxes, so applying them is
 * idempotent, and the Status OK that lets a sender forget a message goes
 * out only after the commit.  Each is applied by a store request; the
 * message and its connection are kept until the answer.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "keyseq.h"
#include "log.h"
#include "msg.h"

#include "tspd.h"

#define PROVISION_MIN_RSA_BITS	2048

/* 1 if the verified peer of c holds role; else refuse and close c. */
static int
provision_role(struct conn *c, const struct frame *f, const char *role)
{
	if (strcmp(conn_peer_role(c), role) == 0)
		return 1;
	log_warnx("provision %s: %s refused: peer cn=%s role=%s, need role %s",
	    conn_peer_addr(c), frame_type_name(f->f_type), conn_peer_cn(c),
	    conn_peer_role(c), role);
	conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__AUTH_FAILED,
	    "role not allowed");
	conn_close(c, "role not allowed");
	return 0;
}

/* Reply to a provisioning message with a Status echoing its request id. */
static void
provision_reply(struct conn *c, const struct frame *f, int code,
    const char *detail)
{
	conn_send_status(c, f->f_request_id, code, detail);
}

/* A fill record or M2 being applied by the store. */
struct prov_req {
	struct tspdb_req	 pr_rq;
	struct tspd		*pr_env;
	struct conn		*pr_conn;	/* referenced */
	uint64_t		 pr_request_id;
	Qroam__FillRecord	*pr_fr;
	Qroam__M2		*pr_m2;
	uint64_t		 pr_old_epoch;
};

static struct prov_req *
prov_req_new(struct tspd *env, struct conn *c, const struct frame *f,
    void (*done)(struct tspdb_req *))
{
	struct prov_req	*pr;

	if ((pr = calloc(1, sizeof(*pr))) == NULL) {
		log_warn("provision %s", conn_peer_addr(c));
		return NULL;
	}
	tspdb_req_init(&pr->pr_rq, done, pr);
	pr->pr_env = env;
	pr->pr_conn = c;
	pr->pr_request_id = f->f_request_id;
	conn_ref(c);
	return pr;
}

static void
fill_wipe_free(Qroam__FillRecord *fr)
{
	for (size_t i = 0; i < fr->n_keys; i++)
		crypto_wipe(fr->keys[i]->key.data, fr->keys[i]->key.len);
	qroam__fill_record__free_unpacked(fr, NULL);
}

static void
prov_req_free(struct prov_req *pr)
{
	if (pr->pr_fr != NULL)
		fill_wipe_free(pr->pr_fr);
	if (pr->pr_m2 != NULL) {
		crypto_wipe(pr->pr_m2->prv.data, pr->pr_m2->prv.len);
		qroam__m2__free_unpacked(pr->pr_m2, NULL);
	}
	conn_unref(pr->pr_conn);
	free(pr);
}

static void
prov_status(struct prov_req *pr, int code, const char *detail)
{
	conn_send_status(pr->pr_conn, pr->pr_request_id, code, detail);
}

/* The store applied a fill record: answer it. */
static void
provision_fill_done(struct tspdb_req *rq)
{
	struct prov_req		*pr = rq->rq_arg;
	const Qroam__FillRecord	*fr = pr->pr_fr;

	switch (rq->rq_result) {
	case TSPDB_OK:
		log_info("fill stored chip=%s m=%u k=%u", fr->chip_id, fr->m,
		    fr->k);
		prov_status(pr, QROAM__STATUS_CODE__OK, NULL);
		break;
	case TSPDB_SAME:
		log_info("fill already stored chip=%s", fr->chip_id);
		prov_status(pr, QROAM__STATUS_CODE__OK, NULL);
		break;
	case TSPDB_CONFLICT:
		log_warnx("fill refused chip=%s reason=differs from the stored "
		    "record", fr->chip_id);
		prov_status(pr, QROAM__STATUS_CODE__BAD_REQUEST,
		    "conflicts with the stored fill record");
		break;
	default:
		log_warnx("fill chip=%s: store failed", fr->chip_id);
		prov_status(pr, QROAM__STATUS_CODE__INTERNAL, NULL);
		break;
	}
	prov_req_free(pr);
}

/* F1: validate and store a fill record. */
static void
provision_fill(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__FillRecord	*fr;
	struct prov_req		*pr;
	const char		*why = "invalid";

	if (!provision_role(c, f, "filler"))
		return;
	fr = (Qroam__FillRecord *)frame_unpack(f,
	    &qroam__fill_record__descriptor);
	if (fr == NULL) {
		log_warnx("fill refused from %s: malformed record",
		    conn_peer_cn(c));
		provision_reply(c, f, QROAM__STATUS_CODE__BAD_REQUEST,
		    "malformed fill record");
		return;
	}
	if (!id_valid_hex(fr->chip_id, CHIP_ID_LEN) ||
	    keyseq_validate(fr, &why) == -1) {
		log_warnx("fill refused from %s: %s", conn_peer_cn(c),
		    id_valid_hex(fr->chip_id, CHIP_ID_LEN) ? why :
		    "bad chip_id");
		provision_reply(c, f, QROAM__STATUS_CODE__BAD_REQUEST,
		    "invalid fill record");
		goto done;
	}
	if ((pr = prov_req_new(env, c, f, provision_fill_done)) == NULL) {
		provision_reply(c, f, QROAM__STATUS_CODE__INTERNAL, NULL);
		goto done;
	}
	pr->pr_fr = fr;
	tspdb_fill_apply(env->t_db, fr, &pr->pr_rq);
	return;
 done:
	fill_wipe_free(fr);
}

const char *
tspd_provision_m2_check(const Qroam__M2 *m2)
{
	EVP_PKEY	*pk;
	const char	*why = NULL;

	if (!id_valid_vin(m2->vehicle_id))
		return "bad vehicle_id";
	if (!id_valid_hex(m2->chip_id, CHIP_ID_LEN))
		return "bad chip_id";
	if (m2->epoch > INT64_MAX)
		return "bad epoch";
	if (m2->prv.len == 0 ||
	    (pk = crypto_priv_from_der(m2->prv.data, m2->prv.len)) == NULL)
		return "private key does not parse";
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bits(pk) < PROVISION_MIN_RSA_BITS)
		why = "private key is not RSA of 2048 bits or more";
	EVP_PKEY_free(pk);
	return why;
}

/* The store applied an M2: answer it. */
static void
provision_m2_done(struct tspdb_req *rq)
{
	struct prov_req		*pr = rq->rq_arg;
	const Qroam__M2		*m2 = pr->pr_m2;
	uint64_t		 old = pr->pr_old_epoch;

	switch (rq->rq_result) {
	case TSPDB_OK:
		tspd_prv_forget(pr->pr_env, m2->vehicle_id);
		if (old != 0)
			log_info("registration replaced vehicle=%s chip=%s "
			    "epoch=%" PRIu64 " old_epoch=%" PRIu64
			    " (its authentication and session ended)",
			    m2->vehicle_id, m2->chip_id, m2->epoch, old);
		else
			log_info("registration stored vehicle=%s chip=%s "
			    "epoch=%" PRIu64, m2->vehicle_id, m2->chip_id,
			    m2->epoch);
		prov_status(pr, QROAM__STATUS_CODE__OK, NULL);
		break;
	case TSPDB_SAME:
		log_info("registration already stored vehicle=%s epoch=%" PRIu64,
		    m2->vehicle_id, m2->epoch);
		prov_status(pr, QROAM__STATUS_CODE__OK, NULL);
		break;
	case TSPDB_STALE:
		log_info("registration ignored vehicle=%s epoch=%" PRIu64
		    " reason=older than stored epoch %" PRIu64,
		    m2->vehicle_id, m2->epoch, old);
		prov_status(pr, QROAM__STATUS_CODE__OK, NULL);
		break;
	default:
		log_warnx("registration vehicle=%s: store failed",
		    m2->vehicle_id);
		prov_status(pr, QROAM__STATUS_CODE__INTERNAL, NULL);
		break;
	}
	prov_req_free(pr);
}

/* F2: validate and store an M2. */
static void
provision_m2(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__M2	*m2;
	struct prov_req	*pr;
	const char	*why;

	if (!provision_role(c, f, "registrar"))
		return;
	m2 = (Qroam__M2 *)frame_unpack(f, &qroam__m2__descriptor);
	if (m2 == NULL) {
		log_warnx("registration refused from %s: malformed M2",
		    conn_peer_cn(c));
		provision_reply(c, f, QROAM__STATUS_CODE__BAD_REQUEST,
		    "malformed M2");
		return;
	}
	if ((why = tspd_provision_m2_check(m2)) != NULL) {
		log_warnx("registration refused from %s vehicle=%s: %s",
		    conn_peer_cn(c), id_valid_vin(m2->vehicle_id) ?
		    m2->vehicle_id : "(invalid)", why);
		provision_reply(c, f, QROAM__STATUS_CODE__BAD_REQUEST, why);
	} else if ((pr = prov_req_new(env, c, f, provision_m2_done)) == NULL)
		provision_reply(c, f, QROAM__STATUS_CODE__INTERNAL, NULL);
	else {
		pr->pr_m2 = m2;
		tspdb_m2_apply(env->t_db, m2->vehicle_id, m2->chip_id,
		    m2->prv.data, m2->prv.len, m2->epoch, &pr->pr_old_epoch,
		    &pr->pr_rq);
		return;
	}
	crypto_wipe(m2->prv.data, m2->prv.len);
	qroam__m2__free_unpacked(m2, NULL);
}

/* Dispatch one frame from a provisioning peer. */
static void
provision_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct tspd	*env = arg;

	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_FILL_RECORD:
		provision_fill(env, c, f);
		break;
	case QROAM__MSG_TYPE__MT_M2:
		provision_m2(env, c, f);
		break;
	case QROAM__MSG_TYPE__MT_ACCESS_REQUEST:
		if (provision_role(c, f, "sched"))
			tspd_handover_access(env, c, f);
		break;
	case QROAM__MSG_TYPE__MT_M8:
		if (provision_role(c, f, "tsp"))
			tspd_handover_m8(env, c, f);
		break;
	default:
		log_warnx("provision %s (cn=%s): unexpected message type %u (%s)",
		    conn_peer_addr(c), conn_peer_cn(c), f->f_type,
		    frame_type_name(f->f_type));
		provision_reply(c, f, QROAM__STATUS_CODE__BAD_REQUEST,
		    "unexpected message type");
		break;
	}
}

static void
provision_close(struct conn *c, const char *reason, void *arg)
{
	tspd_handover_in_conn_closed(arg, c);
	log_debug("provision %s: closed: %s", conn_peer_addr(c), reason);
}

const struct conn_cb tspd_provision_cb = {
	.on_frame = provision_frame,
	.on_close = provision_close,
};
