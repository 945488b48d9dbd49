/*
 * F2 on the trusted authority: bind a vehicle to its chip, generate its key
 * pair, answer M1 to the vehicle and queue M2 for every TSP, all in one
 * transaction.  A vehicle or chip seen before is refused and nothing
 * changes; only an operator may rebind a vehicle to a refilled chip.
 *
 * The key pair comes from keygen.h: ready at once, or later from a worker
 * thread.  Meanwhile the request waits in r_pending, which also holds its
 * vehicle and chip: a second request for either is refused as a duplicate
 * at once, as it would be once the first is stored, so nothing else can
 * change the two rows while the key is being made and the epoch read on
 * arrival still holds when the registration is stored.  A request whose
 * connection closes meanwhile is stored all the same, as it would have
 * been had its key been ready, and only its answer is dropped; one still
 * waiting at shutdown is dropped unstored, like one never read.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest.h"
#include "conn.h"
#include "crypto.h"
#include "ids.h"
#include "keygen.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "outboxd.h"
#include "server.h"
#include "store.h"
#include "workq.h"

#define REG_CN_LEN	65	/* conn_peer_cn */
#define REG_ADDR_LEN	64	/* "[v6 address]:port" */

/* A registration waiting for its key pair. */
struct reg_pending {
	struct keygen_wait	 rp_wait;
	TAILQ_ENTRY(reg_pending) rp_entry;
	struct registrar	*rp_r;
	struct conn		*rp_conn;	/* NULL once it closed */
	char			 rp_who[REG_CN_LEN];
	char			 rp_addr[REG_ADDR_LEN];
	uint64_t		 rp_request_id;
	Qroam__RegisterRequest	*rp_req;
	int64_t			 rp_epoch;	/* the stored one, 0: new */
};

TAILQ_HEAD(reg_pending_list, reg_pending);

struct registrar {
	const struct registrard_conf *r_conf;
	const struct topo	*r_topo;
	sqlite3			*r_db;
	struct outbox		*r_ob;
	sqlite3_stmt		*r_get_vehicle;
	sqlite3_stmt		*r_get_chip;
	sqlite3_stmt		*r_put_reg;
	sqlite3_stmt		*r_put_chip;
	struct metric		*r_registrations;
	struct keygen		*r_keygen;
	struct atrest		*r_atrest;	/* NULL: Prv in plain */
	struct reg_pending_list	 r_pending;
};

static const char *const registrar_schema[] = {
	"CREATE TABLE registrations ("
	" vehicle_id TEXT PRIMARY KEY,"
	" chip_id TEXT NOT NULL UNIQUE,"
	" pbv BLOB NOT NULL, prv BLOB NOT NULL,"
	" epoch INTEGER NOT NULL,"
	" registered_ms INTEGER NOT NULL,"
	" requested_by TEXT NOT NULL);"
	/* Every chip ever bound, so a retired chip is never bound again. */
	"CREATE TABLE chips ("
	" chip_id TEXT PRIMARY KEY,"
	" vehicle_id TEXT NOT NULL,"
	" bound_ms INTEGER NOT NULL);",
	outbox_schema,
};

/* Epoch of vehicle vid: 0 if unknown, -1 on a store error. */
static int64_t
registrar_epoch(struct registrar *r, const char *vid)
{
	sqlite3_stmt	*st = r->r_get_vehicle;
	int64_t		 epoch = 0;
	int		 rc;

	sqlite3_bind_text(st, 1, vid, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		epoch = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		epoch = -1;
	store_reset(st);
	return epoch;
}

/* 1 if chip was ever bound, 0 if not, -1 on a store error. */
static int
registrar_chip_known(struct registrar *r, const char *chip)
{
	sqlite3_stmt	*st = r->r_get_chip;
	int		 rc;

	sqlite3_bind_text(st, 1, chip, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The row a sealed Prv is bound to. */
static void
registrar_prv_aad(char *aad, size_t len, const char *vid, const char *chip,
    int64_t epoch)
{
	snprintf(aad, len, "registrations.prv|%s|%s|%lld", vid, chip,
	    (long long)epoch);
}

/* Bind Prv, sealed under the store key if there is one; 0 or -1. */
static int
registrar_bind_prv(struct registrar *r, const Qroam__RegisterRequest *req,
    const struct keypair *k, int64_t epoch)
{
	uint8_t		*sealed;
	size_t		 len;
	char		 aad[160];

	if (r->r_atrest == NULL) {
		sqlite3_bind_blob(r->r_put_reg, 4, k->kp_priv,
		    (int)k->kp_privlen, SQLITE_STATIC);
		return 0;
	}
	registrar_prv_aad(aad, sizeof(aad), req->vehicle_id, req->chip_id,
	    epoch);
	if (atrest_seal(r->r_atrest, aad, k->kp_priv, k->kp_privlen, &sealed,
	    &len) == -1)
		return -1;
	sqlite3_bind_blob(r->r_put_reg, 4, sealed, (int)len, SQLITE_TRANSIENT);
	free(sealed);
	return 0;
}

/* Store the binding and queue M2, atomically. */
static int
registrar_store(struct registrar *r, const Qroam__RegisterRequest *req,
    const struct keypair *k, int64_t epoch, const char *who)
{
	Qroam__M2	 m2 = QROAM__M2__INIT;
	uint8_t		*buf;
	size_t		 len;
	uint64_t	 now = store_now_ms();
	int		 rc = -1;

	m2.vehicle_id = req->vehicle_id;
	m2.chip_id = req->chip_id;
	m2.prv.data = k->kp_priv;
	m2.prv.len = k->kp_privlen;
	m2.epoch = (uint64_t)epoch;
	len = qroam__m2__get_packed_size(&m2);
	if ((buf = malloc(len)) == NULL)
		return -1;
	qroam__m2__pack(&m2, buf);
	if (store_begin(r->r_db) == -1)
		goto out;
	sqlite3_bind_text(r->r_put_reg, 1, req->vehicle_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->r_put_reg, 2, req->chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(r->r_put_reg, 3, k->kp_pub, (int)k->kp_publen, SQLITE_STATIC);
	if (registrar_bind_prv(r, req, k, epoch) == -1) {
		store_rollback(r->r_db);
		goto out;
	}
	sqlite3_bind_int64(r->r_put_reg, 5, epoch);
	sqlite3_bind_int64(r->r_put_reg, 6, (sqlite3_int64)now);
	sqlite3_bind_text(r->r_put_reg, 7, who, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->r_put_chip, 1, req->chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->r_put_chip, 2, req->vehicle_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->r_put_chip, 3, (sqlite3_int64)now);
	if (store_step_done(r->r_put_reg, NULL) == -1 ||
	    store_step_done(r->r_put_chip, NULL) == -1 ||
	    outbox_enqueue_all(r->r_ob, QROAM__MSG_TYPE__MT_M2, buf, len) == -1) {
		store_rollback(r->r_db);
		goto out;
	}
	rc = store_commit(r->r_db);
 out:
	crypto_wipe(buf, len);
	free(buf);
	return rc;
}

/* Reply M1: the public key and every TSP with its vehicle address and region. */
static void
registrar_reply_m1(struct registrar *r, struct conn *c, uint64_t reqid,
    const struct keypair *k)
{
	const struct topo	*t = r->r_topo;
	Qroam__M1		 m1 = QROAM__M1__INIT;
	Qroam__TspInfo		*infos, **iptr;
	Qroam__Point		*pts, **pptr;
	size_t			 i, j, npts = 0, p = 0;

	for (i = 0; i < t->t_ntsps; i++)
		npts += t->t_tsps[i].tt_nregion;
	infos = calloc(t->t_ntsps + 1, sizeof(*infos));
	iptr = calloc(t->t_ntsps + 1, sizeof(*iptr));
	pts = calloc(npts + 1, sizeof(*pts));
	pptr = calloc(npts + 1, sizeof(*pptr));
	if (infos == NULL || iptr == NULL || pts == NULL || pptr == NULL) {
		conn_send_status(c, reqid, QROAM__STATUS_CODE__INTERNAL, "no memory");
		goto out;
	}
	for (i = 0; i < t->t_ntsps; i++) {
		const struct topo_tsp *tt = &t->t_tsps[i];

		qroam__tsp_info__init(&infos[i]);
		infos[i].tsp_id = (char *)tt->tt_id;
		infos[i].host = (char *)tt->tt_vehicle.ep_host;
		infos[i].port = tt->tt_vehicle.ep_port;
		infos[i].region = &pptr[p];
		infos[i].n_region = tt->tt_nregion;
		for (j = 0; j < tt->tt_nregion; j++, p++) {
			qroam__point__init(&pts[p]);
			pts[p].lat = tt->tt_region[j].gp_lat;
			pts[p].lon = tt->tt_region[j].gp_lon;
			pptr[p] = &pts[p];
		}
		iptr[i] = &infos[i];
	}
	m1.pbv.data = k->kp_pub;
	m1.pbv.len = k->kp_publen;
	m1.tsps = iptr;
	m1.n_tsps = t->t_ntsps;
	conn_send(c, QROAM__MSG_TYPE__MT_M1, reqid, &m1.base);
 out:
	free(infos);
	free(iptr);
	free(pts);
	free(pptr);
}

/* Why the vehicle or chip of req is busy with a waiting registration. */
static const char *
registrar_in_progress(struct registrar *r, const Qroam__RegisterRequest *req)
{
	struct reg_pending	*rp;

	TAILQ_FOREACH(rp, &r->r_pending, rp_entry) {
		if (strcmp(rp->rp_req->chip_id, req->chip_id) == 0)
			return "chip registration in progress";
		if (strcmp(rp->rp_req->vehicle_id, req->vehicle_id) == 0)
			return "vehicle registration in progress";
	}
	return NULL;
}

/* Why req may not be registered, or NULL.  *code receives the status. */
static const char *
registrar_refusal(struct registrar *r, struct conn *c,
    const Qroam__RegisterRequest *req, int64_t *epoch, int *code)
{
	const char	*why;
	int		 known;

	*code = QROAM__STATUS_CODE__BAD_REQUEST;
	if (!id_valid_vin(req->vehicle_id))
		return "invalid vehicle_id";
	if (!id_valid_hex(req->chip_id, CHIP_ID_LEN))
		return "invalid chip_id";
	if (req->rebind && strcmp(conn_peer_role(c), "operator") != 0) {
		*code = QROAM__STATUS_CODE__AUTH_FAILED;
		return "only an operator may rebind a vehicle";
	}
	*code = QROAM__STATUS_CODE__DUPLICATE_REGISTRATION;
	if ((why = registrar_in_progress(r, req)) != NULL)
		return why;
	*code = QROAM__STATUS_CODE__INTERNAL;
	if ((*epoch = registrar_epoch(r, req->vehicle_id)) == -1 ||
	    (known = registrar_chip_known(r, req->chip_id)) == -1)
		return "store error";
	*code = QROAM__STATUS_CODE__DUPLICATE_REGISTRATION;
	if (known)
		return "chip already registered";
	if (*epoch > 0 && !req->rebind)
		return "vehicle already registered";
	if (*epoch == 0 && req->rebind) {
		*code = QROAM__STATUS_CODE__UNKNOWN_VEHICLE;
		return "rebind of an unregistered vehicle";
	}
	return NULL;
}

static void
reg_pending_free(struct reg_pending *rp)
{
	if (rp->rp_req != NULL)
		qroam__register_request__free_unpacked(rp->rp_req, NULL);
	free(rp);
}

/*
 * Store the registration of rp with key pair k and answer M1, or the
 * status of the failure, if its connection is still open.
 */
static void
registrar_commit(struct registrar *r, struct reg_pending *rp,
    const struct keypair *k)
{
	const Qroam__RegisterRequest	*req = rp->rp_req;
	struct conn			*c = rp->rp_conn;
	int64_t				 epoch = rp->rp_epoch + 1;

	if (registrar_store(r, req, k, epoch, rp->rp_who) == -1) {
		log_warnx("registration of %s not stored", req->vehicle_id);
		if (c != NULL)
			conn_send_status(c, rp->rp_request_id,
			    QROAM__STATUS_CODE__INTERNAL, "store failed");
		return;
	}
	metric_inc(r->r_registrations, req->rebind ? "rebind" : "new");
	log_info("%s vehicle=%s chip=%.16s epoch=%lld by %s%s",
	    req->rebind ? "rebound" : "registered", req->vehicle_id,
	    req->chip_id, (long long)epoch, rp->rp_who, c == NULL ?
	    " (connection closed before the answer)" : "");
	if (c != NULL)
		registrar_reply_m1(r, c, rp->rp_request_id, k);
	outbox_kick(r->r_ob);
}

/* On the loop: the key pair of a waiting registration (NULL: failed). */
static void
registrar_key_ready(void *arg, struct keypair *kp)
{
	struct reg_pending	*rp = arg;
	struct registrar	*r = rp->rp_r;

	TAILQ_REMOVE(&r->r_pending, rp, rp_entry);
	if (kp != NULL)
		registrar_commit(r, rp, kp);
	else if (rp->rp_conn != NULL)
		conn_send_status(rp->rp_conn, rp->rp_request_id,
		    QROAM__STATUS_CODE__INTERNAL, "key generation failed");
	keypair_free(kp);
	reg_pending_free(rp);
}

/* A registration that passed the checks, or NULL if out of memory. */
static struct reg_pending *
reg_pending_new(struct registrar *r, struct conn *c, const struct frame *f,
    Qroam__RegisterRequest *req, int64_t epoch)
{
	struct reg_pending	*rp;

	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return NULL;
	rp->rp_wait.kw_ready = registrar_key_ready;
	rp->rp_wait.kw_arg = rp;
	rp->rp_r = r;
	rp->rp_conn = c;
	snprintf(rp->rp_who, sizeof(rp->rp_who), "%s", conn_peer_cn(c));
	snprintf(rp->rp_addr, sizeof(rp->rp_addr), "%s", conn_peer_addr(c));
	rp->rp_request_id = f->f_request_id;
	rp->rp_req = req;
	rp->rp_epoch = epoch;
	return rp;
}

/*
 * MT_REGISTER: F2 steps 1-3, and F2.4 rebind for operators.  Stored and
 * answered at once if a key pair is ready, else once it is.
 */
static void
registrar_register(void *arg, struct conn *c, const struct frame *f)
{
	struct registrar	*r = arg;
	Qroam__RegisterRequest	*req;
	struct reg_pending	*rp;
	struct keypair		*kp;
	const char		*why;
	int64_t			 epoch = 0;
	int			 code;

	req = (Qroam__RegisterRequest *)frame_unpack(f,
	    &qroam__register_request__descriptor);
	if (req == NULL) {
		log_warnx("registration refused from %s: malformed request",
		    conn_peer_addr(c));
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__BAD_REQUEST,
		    "malformed RegisterRequest");
		return;
	}
	if ((why = registrar_refusal(r, c, req, &epoch, &code)) != NULL) {
		log_warnx("registration refused: vehicle=%.17s chip=%.16s by %s: "
		    "%s (%s)", id_valid_vin(req->vehicle_id) ? req->vehicle_id : "?",
		    id_valid_hex(req->chip_id, CHIP_ID_LEN) ? req->chip_id : "?",
		    conn_peer_cn(c), msg_status_name(code), why);
		conn_send_status(c, f->f_request_id, code, why);
		qroam__register_request__free_unpacked(req, NULL);
		return;
	}
	if ((rp = reg_pending_new(r, c, f, req, epoch)) == NULL) {
		log_warn("registration of %s", req->vehicle_id);
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__INTERNAL,
		    "no memory");
		qroam__register_request__free_unpacked(req, NULL);
		return;
	}
	switch (keygen_get(r->r_keygen, &rp->rp_wait, &kp)) {
	case 1:
		registrar_commit(r, rp, kp);
		keypair_free(kp);
		reg_pending_free(rp);
		break;
	case 0:
		TAILQ_INSERT_TAIL(&r->r_pending, rp, rp_entry);
		log_debug("registration of %s waits for its key pair",
		    req->vehicle_id);
		break;
	default:
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__INTERNAL,
		    "key generation failed");
		reg_pending_free(rp);
		break;
	}
}

/* A connection closed: registrations of it still waiting go unanswered. */
static void
registrar_closed(void *arg, struct conn *c)
{
	struct registrar	*r = arg;
	struct reg_pending	*rp;

	TAILQ_FOREACH(rp, &r->r_pending, rp_entry)
		if (rp->rp_conn == c)
			rp->rp_conn = NULL;
}

int
registrar_start(struct registrar *r, struct event_base *base)
{
	const struct registrard_conf	*rc = r->r_conf;
	int				 n = rc->rc_workers;

	if (n == REGISTRARD_WORKERS_AUTO)
		n = (int)workq_online_cpus();
	r->r_keygen = keygen_new(base, (unsigned)n, rc->rc_rsa_bits,
	    rc->rc_key_pool);
	if (r->r_keygen == NULL) {
		log_warnx("cannot start %d worker threads", n);
		return -1;
	}
	keygen_set_primes(r->r_keygen, rc->rc_rsa_primes);
	if (n > 0)
		log_info("key generation on %d worker thread%s, %zu key pairs "
		    "kept ready", n, n == 1 ? "" : "s", rc->rc_key_pool);
	else
		log_info("key generation on the event loop, %zu key pairs "
		    "kept ready", rc->rc_key_pool);
	return 0;
}

void
registrar_reload(struct registrar *r)
{
	keygen_set_primes(r->r_keygen, r->r_conf->rc_rsa_primes);
	keygen_configure(r->r_keygen, r->r_conf->rc_rsa_bits,
	    r->r_conf->rc_key_pool);
}

void
registrar_stop(struct registrar *r)
{
	struct reg_pending	*rp;

	if (r->r_keygen == NULL)
		return;
	while ((rp = TAILQ_FIRST(&r->r_pending)) != NULL) {
		TAILQ_REMOVE(&r->r_pending, rp, rp_entry);
		keygen_cancel(r->r_keygen, &rp->rp_wait);
		log_info("registration of vehicle=%s chip=%.16s by %s from %s "
		    "dropped: registrard is stopping", rp->rp_req->vehicle_id,
		    rp->rp_req->chip_id, rp->rp_who, rp->rp_addr);
		reg_pending_free(rp);
	}
	keygen_free(r->r_keygen);
	r->r_keygen = NULL;
	outbox_set_atrest(r->r_ob, NULL);
	atrest_free(r->r_atrest);
	r->r_atrest = NULL;
}

/*
 * Seal again under the current store key every Prv sealed under the
 * previous one, or stored in plain before there was a key; their number,
 * or -1.  One transaction, at start.
 */
static int
registrar_reseal(struct registrar *r)
{
	sqlite3_stmt	*sel, *upd;
	const uint8_t	*v;
	uint8_t		*pt, *ct;
	size_t		 ptlen, ctlen, len;
	char		 aad[160];
	int		 n = 0, rc;

	sel = store_prepare(r->r_db, "SELECT vehicle_id, chip_id, epoch, prv"
	    " FROM registrations");
	upd = store_prepare(r->r_db, "UPDATE registrations SET prv = ?"
	    " WHERE vehicle_id = ?");
	if (store_begin(r->r_db) == -1)
		n = -1;
	while (n >= 0 && sqlite3_step(sel) == SQLITE_ROW) {
		v = sqlite3_column_blob(sel, 3);
		len = (size_t)sqlite3_column_bytes(sel, 3);
		registrar_prv_aad(aad, sizeof(aad),
		    (const char *)sqlite3_column_text(sel, 0),
		    (const char *)sqlite3_column_text(sel, 1),
		    sqlite3_column_int64(sel, 2));
		if (!atrest_is_sealed(v, len)) {
			pt = NULL;
			rc = atrest_seal(r->r_atrest, aad, v, len, &ct, &ctlen);
		} else if ((rc = atrest_open(r->r_atrest, aad, v, len, &pt,
		    &ptlen)) == 1) {
			rc = atrest_seal(r->r_atrest, aad, pt, ptlen, &ct,
			    &ctlen);
			crypto_wipe(pt, ptlen);
			free(pt);
		} else {
			if (rc == 0) {
				crypto_wipe(pt, ptlen);
				free(pt);
			} else
				log_warnx("store: the Prv of %s does not open "
				    "under the store key",
				    sqlite3_column_text(sel, 0));
			continue;
		}
		if (rc == -1) {
			n = -1;
			break;
		}
		sqlite3_bind_blob(upd, 1, ct, (int)ctlen, SQLITE_TRANSIENT);
		free(ct);
		sqlite3_bind_text(upd, 2, (const char *)sqlite3_column_text(sel,
		    0), -1, SQLITE_TRANSIENT);
		n = store_step_done(upd, NULL) == -1 ? -1 : n + 1;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	if (n == -1 || store_commit(r->r_db) == -1) {
		store_rollback(r->r_db);
		return -1;
	}
	return n;
}

/* The store key, and the rows that need it; fatal if it is unusable. */
static void
registrar_atrest(struct registrar *r, const struct registrard_conf *rc)
{
	int	 n;

	if (atrest_load(rc->rc_store_key, rc->rc_store_key_old,
	    &r->r_atrest) == -1)
		fatalx("cannot load the store key");
	if (r->r_atrest == NULL) {
		log_warnx("no store key (store_key, or the credential %s): "
		    "private keys are stored in plain", ATREST_CREDENTIAL);
		return;
	}
	if ((n = registrar_reseal(r)) == -1)
		fatalx("store: cannot seal the private keys again");
	if (n > 0)
		log_info("store: %d private keys sealed under the current "
		    "store key", n);
	outbox_set_atrest(r->r_ob, r->r_atrest);
}

/* The registration statements on the outbox service's store. */
static void
registrar_open(void *arg, const void *conf, const struct topo *topo,
    sqlite3 *db, struct outbox *ob)
{
	struct registrar	*r = arg;

	r->r_conf = conf;
	r->r_topo = topo;
	r->r_db = db;
	r->r_ob = ob;
	TAILQ_INIT(&r->r_pending);
	r->r_registrations = metric_counter("qroam_registrations_total",
	    "Vehicles registered (kind new) or rebound to a new chip by an "
	    "operator (kind rebind).", "kind");
	r->r_get_vehicle = store_prepare(db,
	    "SELECT epoch FROM registrations WHERE vehicle_id = ?");
	r->r_get_chip = store_prepare(db,
	    "SELECT 1 FROM chips WHERE chip_id = ?");
	r->r_put_reg = store_prepare(db, "INSERT OR REPLACE INTO registrations"
	    " (vehicle_id, chip_id, pbv, prv, epoch, registered_ms, requested_by)"
	    " VALUES (?,?,?,?,?,?,?)");
	r->r_put_chip = store_prepare(db,
	    "INSERT INTO chips (chip_id, vehicle_id, bound_ms) VALUES (?,?,?)");
	registrar_atrest(r, conf);
}

const struct outboxd_proto registrar_proto = {
	.op_role = "registrar",
	.op_schema = registrar_schema,
	.op_nschema = sizeof(registrar_schema) / sizeof(registrar_schema[0]),
	.op_roles = { "factory", "operator", "vehicle" },
	.op_refused = "may not register",
	.op_refused_detail = "certificate role may not register vehicles",
	.op_type = QROAM__MSG_TYPE__MT_REGISTER,
	.op_backlog = "registrations",
	.op_count = "registrations",
	.op_count_sql = "SELECT count(*) FROM registrations",
	.op_state_size = sizeof(struct registrar),
	.op_open = registrar_open,
	.op_request = registrar_register,
	.op_closed = registrar_closed,
};
