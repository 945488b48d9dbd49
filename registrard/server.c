/*
 * F2 on the trusted authority: bind a vehicle to its chip, generate its key
 * pair, answer M1 to the vehicle and queue M2 for every TSP, all in one
 * transaction.  A vehicle or chip seen before is refused and nothing
 * changes; only an operator may rebind a vehicle to a refilled chip.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "outboxd.h"
#include "server.h"
#include "store.h"

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

struct reg_keys {
	uint8_t	*rk_pub;
	size_t	 rk_publen;
	uint8_t	*rk_priv;
	size_t	 rk_privlen;
};

static void
reg_keys_free(struct reg_keys *k)
{
	if (k->rk_priv != NULL)
		crypto_wipe(k->rk_priv, k->rk_privlen);
	free(k->rk_priv);
	free(k->rk_pub);
	memset(k, 0, sizeof(*k));
}

/* A fresh vehicle key pair as DER. */
static int
reg_keys_generate(int bits, struct reg_keys *k)
{
	EVP_PKEY	*pk;
	int		 rc = -1;

	memset(k, 0, sizeof(*k));
	if ((pk = crypto_rsa_generate(bits)) == NULL)
		return -1;
	if (crypto_pub_to_der(pk, &k->rk_pub, &k->rk_publen) == 0 &&
	    crypto_priv_to_der(pk, &k->rk_priv, &k->rk_privlen) == 0)
		rc = 0;
	EVP_PKEY_free(pk);
	if (rc == -1)
		reg_keys_free(k);
	return rc;
}

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

/* Store the binding and queue M2, atomically. */
static int
registrar_store(struct registrar *r, const Qroam__RegisterRequest *req,
    const struct reg_keys *k, int64_t epoch, const char *who)
{
	Qroam__M2	 m2 = QROAM__M2__INIT;
	uint8_t		*buf;
	size_t		 len;
	uint64_t	 now = store_now_ms();
	int		 rc = -1;

	m2.vehicle_id = req->vehicle_id;
	m2.chip_id = req->chip_id;
	m2.prv.data = k->rk_priv;
	m2.prv.len = k->rk_privlen;
	m2.epoch = (uint64_t)epoch;
	len = qroam__m2__get_packed_size(&m2);
	if ((buf = malloc(len)) == NULL)
		return -1;
	qroam__m2__pack(&m2, buf);
	if (store_begin(r->r_db) == -1)
		goto out;
	sqlite3_bind_text(r->r_put_reg, 1, req->vehicle_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->r_put_reg, 2, req->chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(r->r_put_reg, 3, k->rk_pub, (int)k->rk_publen, SQLITE_STATIC);
	sqlite3_bind_blob(r->r_put_reg, 4, k->rk_priv, (int)k->rk_privlen,
	    SQLITE_STATIC);
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
    const struct reg_keys *k)
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
	m1.pbv.data = k->rk_pub;
	m1.pbv.len = k->rk_publen;
	m1.tsps = iptr;
	m1.n_tsps = t->t_ntsps;
	conn_send(c, QROAM__MSG_TYPE__MT_M1, reqid, &m1.base);
 out:
	free(infos);
	free(iptr);
	free(pts);
	free(pptr);
}

/* Why req may not be registered, or NULL.  *code receives the status. */
static const char *
registrar_refusal(struct registrar *r, struct conn *c,
    const Qroam__RegisterRequest *req, int64_t *epoch, int *code)
{
	int	known;

	*code = QROAM__STATUS_CODE__BAD_REQUEST;
	if (!id_valid_vin(req->vehicle_id))
		return "invalid vehicle_id";
	if (!id_valid_hex(req->chip_id, CHIP_ID_LEN))
		return "invalid chip_id";
	if (req->rebind && strcmp(conn_peer_role(c), "operator") != 0) {
		*code = QROAM__STATUS_CODE__AUTH_FAILED;
		return "only an operator may rebind a vehicle";
	}
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

/* MT_REGISTER: F2 steps 1-3, and F2.4 rebind for operators. */
static void
registrar_register(void *arg, struct conn *c, const struct frame *f)
{
	struct registrar	*r = arg;
	Qroam__RegisterRequest	*req;
	struct reg_keys		 k;
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
		goto out;
	}
	if (reg_keys_generate(r->r_conf->rc_rsa_bits, &k) == -1) {
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__INTERNAL,
		    "key generation failed");
		goto out;
	}
	if (registrar_store(r, req, &k, epoch + 1, conn_peer_cn(c)) == -1) {
		log_warnx("registration of %s not stored", req->vehicle_id);
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__INTERNAL,
		    "store failed");
	} else {
		metric_inc(r->r_registrations, req->rebind ? "rebind" : "new");
		log_info("%s vehicle=%s chip=%.16s epoch=%lld by %s",
		    req->rebind ? "rebound" : "registered", req->vehicle_id,
		    req->chip_id, (long long)(epoch + 1), conn_peer_cn(c));
		registrar_reply_m1(r, c, f->f_request_id, &k);
		outbox_kick(r->r_ob);
	}
	reg_keys_free(&k);
 out:
	qroam__register_request__free_unpacked(req, NULL);
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
};
