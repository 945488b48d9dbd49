/*
 * The TSP store's front: the backend that the store setting names, the
 * requests forwarded to it, and the queue of answers, delivered from the
 * event loop in the order they were given so that no caller is ever
 * called back from inside its own request.
 */
#include <sys/queue.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"

#include "db_backend.h"

/* The first that accepts the setting; SQLite takes any path. */
static const struct tspdb_backend *const backends[] = {
	&tspdb_postgresql,
	&tspdb_sqlite,
};

TAILQ_HEAD(tspdb_reqs, tspdb_req);

struct tspdb {
	const struct tspdb_backend *db_be;
	void			*db_state;
	struct event_base	*db_base;
	struct event		*db_answer_ev;
	struct tspdb_reqs	 db_answers;
	size_t			 db_pending;	/* made, not answered */
};

static void	answers_cb(evutil_socket_t, short, void *);

static const struct tspdb_backend *
backend_of(const char *spec)
{
	size_t	 i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i]->be_accepts(spec))
			return backends[i];
	return NULL;
}

int
tspdb_shared(const char *spec)
{
	const struct tspdb_backend	*be = backend_of(spec);

	return be != NULL && be->be_shared;
}

const char *
tspdb_store_label(const char *spec)
{
	const struct tspdb_backend	*be = backend_of(spec);

	return be == NULL || !be->be_shared ? spec : be->be_name;
}

struct tspdb *
tspdb_open(const char *spec, struct event_base *base,
    void (*durable)(uint64_t, void *), void *arg, const char *instance,
    uint64_t now_ms, int *recovered)
{
	struct tspdb	*db;

	if ((db = calloc(1, sizeof(*db))) == NULL) {
		log_warn("store");
		return NULL;
	}
	if ((db->db_be = backend_of(spec)) == NULL) {
		log_warnx("store: an empty setting names no store");
		free(db);
		return NULL;
	}
	TAILQ_INIT(&db->db_answers);
	db->db_base = base;
	if (base != NULL && (db->db_answer_ev = event_new(base, -1, 0,
	    answers_cb, db)) == NULL) {
		log_warnx("store: event_new");
		free(db);
		return NULL;
	}
	*recovered = 0;
	if (db->db_be->be_open(db, spec, durable, arg, instance, now_ms,
	    recovered) == -1) {
		if (db->db_answer_ev != NULL)
			event_free(db->db_answer_ev);
		free(db);
		return NULL;
	}
	return db;
}

/* Deliver the answers queued when this ran; later ones wait a pass. */
static void
answers_deliver(struct tspdb *db)
{
	struct tspdb_reqs	 list;
	struct tspdb_req	*rq;

	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &db->db_answers, rq_entry);
	while ((rq = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, rq, rq_entry);
		db->db_pending--;
		rq->rq_done(rq);
	}
}

static void
answers_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct tspdb	*db = arg;

	(void)fd;
	(void)ev;
	answers_deliver(db);
	if (!TAILQ_EMPTY(&db->db_answers))
		event_active(db->db_answer_ev, EV_READ, 0);
}

void
tspdb_close(struct tspdb *db)
{
	if (db == NULL)
		return;
	while (!TAILQ_EMPTY(&db->db_answers))
		answers_deliver(db);
	db->db_be->be_close(db);
	while (!TAILQ_EMPTY(&db->db_answers))
		answers_deliver(db);
	if (db->db_answer_ev != NULL)
		event_free(db->db_answer_ev);
	free(db);
}

const char *
tspdb_backend_name(const struct tspdb *db)
{
	return db->db_be->be_name;
}

size_t
tspdb_pending(const struct tspdb *db)
{
	return db->db_pending;
}

struct event_base *
tspdb_base(const struct tspdb *db)
{
	return db->db_base;
}

void *
tspdb_state(const struct tspdb *db)
{
	return db->db_state;
}

void
tspdb_set_state(struct tspdb *db, void *state)
{
	db->db_state = state;
}

void
tspdb_answer(struct tspdb *db, struct tspdb_req *rq, enum tspdb_result res)
{
	if (rq == NULL) {
		db->db_pending--;
		if (res == TSPDB_ERROR)
			log_warnx("store: a change nobody waited for failed");
		return;
	}
	rq->rq_result = res;
	if (db->db_base == NULL) {
		db->db_pending--;
		rq->rq_done(rq);
		return;
	}
	if (TAILQ_EMPTY(&db->db_answers))
		event_active(db->db_answer_ev, EV_READ, 0);
	TAILQ_INSERT_TAIL(&db->db_answers, rq, rq_entry);
}

/* ---- requests, forwarded ---- */

void
tspdb_fill_apply(struct tspdb *db, const Qroam__FillRecord *fr,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_fill_apply(db, fr, rq);
}

void
tspdb_fill_get(struct tspdb *db, const char *chip_id, struct tspdb_fill *f,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_fill_get(db, chip_id, f, rq);
}

void
tspdb_keypos(struct tspdb *db, const char *chip_id, int64_t *pos,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_keypos(db, chip_id, pos, rq);
}

void
tspdb_m2_apply(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *prv, size_t prvlen, uint64_t epoch, uint64_t *old_epoch,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_m2_apply(db, vid, chip_id, prv, prvlen, epoch, old_epoch,
	    rq);
}

void
tspdb_reg_get(struct tspdb *db, const char *vid, struct tspdb_reg *r,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_reg_get(db, vid, r, rq);
}

void
tspdb_auth_commit(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *nonce, size_t noncelen, uint64_t now_ms, uint64_t expires_ms,
    const char *via, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_auth_commit(db, vid, chip_id, nonce, noncelen, now_ms,
	    expires_ms, via, rq);
}

void
tspdb_auth_get(struct tspdb *db, const char *vid, uint64_t since_ms,
    char chip_id[CHIP_ID_LEN + 1], struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_auth_get(db, vid, since_ms, chip_id, rq);
}

void
tspdb_auth_expire(struct tspdb *db, uint64_t since_ms, uint64_t *n,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_auth_expire(db, since_ms, n, rq);
}

void
tspdb_key_select(struct tspdb *db, const char *chip_id, uint32_t index,
    const char *code, struct tspdb_key *key, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_key_select(db, chip_id, index, code, key, rq);
}

void
tspdb_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_session_open(db, s, sequential, d1, tsp_id, now_ms, rq);
}

void
tspdb_session_get(struct tspdb *db, const char *vid, struct tspdb_session *s,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_session_get(db, vid, s, rq);
}

void
tspdb_session_load(struct tspdb *db, const char *vid, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_session_load(db, vid, rq);
}

void
tspdb_session_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_session_telemetry(db, vid, seq, tx_seq, t, tsp_id,
	    now_ms, rq);
}

void
tspdb_session_end(struct tspdb *db, const char *vid, int power_off,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_session_end(db, vid, power_off, rq);
}

void
tspdb_telemetry_count(struct tspdb *db, const char *vid, int64_t *n,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_telemetry_count(db, vid, n, rq);
}

void
tspdb_batch_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_batch_session_open(db, s, sequential, d1, tsp_id, now_ms,
	    rq);
}

void
tspdb_batch_commit(struct tspdb *db, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_batch_commit(db, rq);
}

void
tspdb_ho_record(struct tspdb *db, const char *hid, const char *vid,
    const char *role, const char *peer, const char *state, const char *reason,
    uint64_t now_ms, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_ho_record(db, hid, vid, role, peer, state, reason,
	    now_ms, rq);
}

void
tspdb_ho_known(struct tspdb *db, const char *hid, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_ho_known(db, hid, rq);
}

void
tspdb_session_seq(struct tspdb *db, const char *vid, uint64_t seq,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_session_seq(db, vid, seq, rq);
}

void
tspdb_ho_out_done(struct tspdb *db, const char *hid, const char *vid,
    uint64_t now_ms, struct tspdb_ready *r, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_ho_out_done(db, hid, vid, now_ms, r, rq);
}

void
tspdb_rd1_load(struct tspdb *db, const char *vid, struct tspdb_rd1 *rd,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_rd1_load(db, vid, rd, rq);
}

void
tspdb_ck2_bind(struct tspdb *db, const char *initiator, const char *hid,
    const uint8_t ck2[CRYPTO_KEYLEN], uint64_t expires_ms, uint64_t now_ms,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_ck2_bind(db, initiator, hid, ck2, expires_ms, now_ms, rq);
}

void
tspdb_ck2_get(struct tspdb *db, const char *initiator, const char *hid,
    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_ck2_get(db, initiator, hid, ck2, expires_ms, rq);
}

void
tspdb_ck2_purge(struct tspdb *db, uint64_t now_ms, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_ck2_purge(db, now_ms, rq);
}

void
tspdb_m8_apply(struct tspdb *db, const char *initiator, const char *hid,
    const Qroam__RD1 *rd1, const struct tspdb_origin *origin, uint64_t now_ms,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_m8_apply(db, initiator, hid, rd1, origin, now_ms, rq);
}

void
tspdb_counts(struct tspdb *db, uint64_t now_ms, struct tspdb_counts *c,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_counts(db, now_ms, c, rq);
}

void
tspdb_status_sessions(struct tspdb *db, size_t max, json_t **out,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_status_sessions(db, max, out, rq);
}

void
tspdb_status_vehicles(struct tspdb *db, size_t max, json_t **out,
    struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_status_vehicles(db, max, out, rq);
}

void
tspdb_status_handovers(struct tspdb *db, uint64_t now_ms, size_t max,
    json_t **out, struct tspdb_req *rq)
{
	db->db_pending++;
	db->db_be->be_status_handovers(db, now_ms, max, out, rq);
}

int
tspdb_session_find(struct tspdb *db, const char *vid,
    const struct tspdb_session **sp)
{
	return db->db_be->be_session_find(db, vid, sp);
}

void
tspdb_session_release(struct tspdb *db, const char *vid)
{
	db->db_be->be_session_release(db, vid);
}

size_t
tspdb_session_live(const struct tspdb *db)
{
	return db->db_be->be_session_live(db);
}

void
tspdb_session_contexts(struct tspdb *db, size_t n)
{
	db->db_be->be_session_contexts(db, n);
}

int
tspdb_session_stored(struct tspdb *db, const char *vid, uint32_t key_index,
    uint64_t seq)
{
	return db->db_be->be_session_stored(db, vid, key_index, seq);
}

uint64_t
tspdb_session_tell(struct tspdb *db, const char *vid)
{
	return db->db_be->be_session_tell(db, vid);
}

int
tspdb_session_next_tx(struct tspdb *db, const char *vid, uint64_t *tx_seq,
    const struct tspdb_session **sp)
{
	return db->db_be->be_session_next_tx(db, vid, tx_seq, sp);
}

void
tspdb_batch_set_flush(struct tspdb *db, void (*flush)(void *), void *arg)
{
	db->db_be->be_batch_set_flush(db, flush, arg);
}

enum tspdb_result
tspdb_batch_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, int *now)
{
	return db->db_be->be_batch_telemetry(db, vid, seq, tx_seq, t, tsp_id,
	    now_ms, now);
}

int
tspdb_batch_open(struct tspdb *db)
{
	return db->db_be->be_batch_open(db);
}

uint64_t
tspdb_written(const struct tspdb *db)
{
	return db->db_be->be_written(db);
}

uint64_t
tspdb_durable(const struct tspdb *db)
{
	return db->db_be->be_durable(db);
}
