/*
 * The TSP store: fill records, M2 registrations, key draw positions and
 * used keys, authentication state, sessions (K1) and the telemetry history.
 *
 * The daemon sees one interface whatever holds the data: a backend
 * (struct tspdb_backend in db_backend.h) chosen by the store setting,
 * SQLite (db_sqlite.c, a path) today.  Every step that reads or changes
 * stored state is a request (struct tspdb_req) answered on the event loop
 * once the backend has its result, so a backend that talks to a database
 * server over the network never blocks the loop.  Each change a request
 * makes is one transaction: a protocol step is wholly stored or not at
 * all, across crashes.  A result means the change is visible to every
 * later request; it is durable once tspdb_durable() reaches the
 * tspdb_written() read when the result came, and whatever depends on that
 * waits for it (conn_barrier).  The session state of the vehicles
 * connected here is held in memory, so the hot path of telemetry makes no
 * request at all.
 *
 * The exported names carry the prefix tspdb_ rather than db_ so that they
 * stay distinct from the other daemons' stores: unit tests link every
 * daemon library together.
 */
#ifndef TSPD_DB_H
#define TSPD_DB_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "crypto.h"
#include "ids.h"
#include "qroam.pb-c.h"

struct tspdb;

/* Results of the state-changing functions. */
enum tspdb_result {
	TSPDB_OK,		/* stored */
	TSPDB_SAME,		/* already stored with the same content */
	TSPDB_STALE,		/* older than what is stored; nothing changed */
	TSPDB_CONFLICT,		/* differs from what is stored; nothing changed */
	TSPDB_REPLAY,		/* nonce or sequence number seen before */
	TSPDB_REUSED,		/* the chip key was used or burned before */
	TSPDB_UNKNOWN,		/* no such index, code, chip or session */
	TSPDB_ERROR,		/* the store failed; logged, rolled back */
};

/*
 * A request to the store, embedded in the caller's context.  The store
 * fills rq_result (and the outputs named in the call, which must stay
 * valid until then) and calls rq_done on the loop, never from inside the
 * call that made the request, in the order the requests were made.
 */
struct tspdb_req {
	void			(*rq_done)(struct tspdb_req *);
	void			*rq_arg;
	enum tspdb_result	 rq_result;
	TAILQ_ENTRY(tspdb_req)	 rq_entry;	/* the store's */
};

static inline void
tspdb_req_init(struct tspdb_req *rq, void (*done)(struct tspdb_req *),
    void *arg)
{
	rq->rq_done = done;
	rq->rq_arg = arg;
	rq->rq_result = TSPDB_ERROR;
}

/* Parameters of a stored fill record. */
struct tspdb_fill {
	uint32_t	 f_m;
	uint32_t	 f_k;
	uint32_t	 f_n;
	uint64_t	 f_created_ms;
};

/* A vehicle's registration (M2).  r_prv is malloc'd: tspdb_reg_clear. */
struct tspdb_reg {
	char		 r_chip_id[CHIP_ID_LEN + 1];
	uint8_t		*r_prv;
	size_t		 r_prvlen;
	uint64_t	 r_epoch;
};

/* One chip key selected by an M3. */
struct tspdb_key {
	uint32_t	 k_index;
	uint8_t		 k_key[CRYPTO_KEYLEN];
};

/*
 * The sessions row's tx_seq is a ceiling above every cloud->vehicle seq
 * used, raised this far ahead at a time (db_live.c).
 */
#define TSPDB_TX_AHEAD	(1u << 20)

/* K1 cipher contexts kept for the sessions in use (db_live.c). */
#define TSPDB_AEAD_POOL	4096

/* A vehicle's session under K1. */
struct tspdb_session {
	char		 s_vid[VIN_LEN + 1];
	char		 s_chip_id[CHIP_ID_LEN + 1];
	uint8_t		 s_k1[CRYPTO_KEYLEN];
	uint32_t	 s_key_index;
	uint64_t	 s_rx_seq;	/* last vehicle->TSP seq accepted */
	uint64_t	 s_tx_seq;	/* last TSP->vehicle seq used */
	uint64_t	 s_opened_ms;
	/* The vehicle holds an authentication here (not handed over). */
	int		 s_authed;
	/* In memory only: the highest seq whose record is durable, told. */
	uint64_t	 s_stored_seq;
	uint64_t	 s_stored_told;
	/*
	 * K1's cipher context in a session held in memory, as lent by
	 * tspdb_session_find or tspdb_session_next_tx; valid until the next
	 * call of either.
	 */
	struct crypto_aead *s_aead;
};

/*
 * Open (creating or migrating) the store that spec names, as tspd
 * instance instance of its region; NULL on failure, logged.  Handovers
 * this instance left unfinished in an earlier run fail (*recovered
 * counts them); those of the region's other instances are theirs.  With base, requests are answered on its
 * loop and commits become durable off it: durable(n, arg) reports on the
 * loop when the first n commits (tspdb_written) are durable.  Without base
 * (tools and tests) every request is answered, and durable, before the
 * call returns.
 */
struct tspdb	*tspdb_open(const char *spec, struct event_base *base,
		    void (*durable)(uint64_t n, void *arg), void *arg,
		    const char *instance, uint64_t now_ms, int *recovered);
/* 1 if several tspd instances may share the store spec names. */
int		 tspdb_shared(const char *spec);
/*
 * What a log line may say of spec: a path as it is, a database server's
 * connection string as the backend's name (it may hold a password).
 */
const char	*tspdb_store_label(const char *spec);
/* Answer the requests still queued, commit what is open, sync, free. */
void		 tspdb_close(struct tspdb *);
/* The backend's name ("sqlite"). */
const char	*tspdb_backend_name(const struct tspdb *);
/* Commits made so far / known durable so far. */
uint64_t	 tspdb_written(const struct tspdb *);
uint64_t	 tspdb_durable(const struct tspdb *);
/* Requests made and not yet answered. */
size_t		 tspdb_pending(const struct tspdb *);

/*
 * Each request below names its results; TSPDB_ERROR means the store
 * failed (logged) and nothing changed.
 */

/* ---- F1 ---- */

/*
 * Store a validated fill record and its key position (0).  A record whose
 * chip is stored already is never altered: TSPDB_SAME when it matches,
 * TSPDB_CONFLICT when it does not.  fr must stay valid until the answer.
 */
void	tspdb_fill_apply(struct tspdb *, const Qroam__FillRecord *fr,
	    struct tspdb_req *);
/* TSPDB_OK and *f filled, or TSPDB_UNKNOWN (no record of the chip). */
void	tspdb_fill_get(struct tspdb *, const char *chip_id,
	    struct tspdb_fill *f, struct tspdb_req *);
/* TSPDB_OK and *pos: the chip's next unused position, sequential order. */
void	tspdb_keypos(struct tspdb *, const char *chip_id, int64_t *pos,
	    struct tspdb_req *);

/* ---- F2 ---- */

/*
 * Apply an M2: stored when the vehicle is new or epoch is above the stored
 * one (which also ends the vehicle's authentication and session, made
 * under the old binding).  Equal epoch: TSPDB_SAME; lower: TSPDB_STALE.
 * *old_epoch receives the stored epoch (0 if none).
 */
void	tspdb_m2_apply(struct tspdb *, const char *vid, const char *chip_id,
	    const uint8_t *prv, size_t prvlen, uint64_t epoch,
	    uint64_t *old_epoch, struct tspdb_req *);
/* TSPDB_OK and *r filled (release with tspdb_reg_clear), or UNKNOWN. */
void	tspdb_reg_get(struct tspdb *, const char *vid, struct tspdb_reg *r,
	    struct tspdb_req *);
/* Wipe and free the private key of r. */
void	tspdb_reg_clear(struct tspdb_reg *r);

/* ---- F3 ---- */

/*
 * Record a successful authentication in one transaction: purge expired
 * nonces, refuse a nonce seen before (TSPDB_REPLAY), store the nonce until
 * expires_ms, upsert auth(vid, chip_id, now, via) and end the vehicle's
 * session.
 */
void	tspdb_auth_commit(struct tspdb *, const char *vid, const char *chip_id,
	    const uint8_t *nonce, size_t noncelen, uint64_t now_ms,
	    uint64_t expires_ms, const char *via, struct tspdb_req *);
/*
 * TSPDB_OK and chip_id of the authentication filled, or UNKNOWN, also for
 * one last used before since_ms (F8 auth_idle; 0: no limit).
 */
void	tspdb_auth_get(struct tspdb *, const char *vid, uint64_t since_ms,
	    char chip_id[CHIP_ID_LEN + 1], struct tspdb_req *);
/* Delete the authentications last used before since_ms; *n of them. */
void	tspdb_auth_expire(struct tspdb *, uint64_t since_ms, uint64_t *n,
	    struct tspdb_req *);

/* ---- F4 ---- */

/*
 * Select the key an M3 names, without changing anything.  Sequential mode
 * (code == NULL): index must be below m, at or after the key position and
 * not used.  Arbitrary mode: code must name a key that lies at or after
 * the key position and is not used.  TSPDB_OK and *key filled,
 * TSPDB_UNKNOWN (index out of range, unknown code) or TSPDB_REUSED.
 */
void	tspdb_key_select(struct tspdb *, const char *chip_id, uint32_t index,
	    const char *code, struct tspdb_key *key, struct tspdb_req *);
/*
 * Open a session after a successful M3, in one transaction: mark key
 * s->s_key_index used ('m3'); in sequential mode burn the unused keys it
 * skipped and move the key position past it, in arbitrary mode move the
 * key position past any run of used keys; replace the vehicle's session
 * with s (rx_seq 0, tx_seq 1) and store d1 as telemetry seq 0.
 * TSPDB_REUSED if the key turned out used; nothing changes then.
 */
void	tspdb_session_open(struct tspdb *, const struct tspdb_session *s,
	    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
	    uint64_t now_ms, struct tspdb_req *);
/*
 * TSPDB_OK and *s filled from the store (s_aead NULL), or UNKNOWN (no
 * session).  Sequence numbers advanced by the open batch are included.
 */
void	tspdb_session_get(struct tspdb *, const char *vid,
	    struct tspdb_session *s, struct tspdb_req *);
/*
 * The vehicle's session as held in memory, with no request: 1 and *sp
 * set, 0 if it is not in memory (tspdb_session_load reads it), -1 on
 * error.  The session stays valid until the next call that opens, ends
 * or changes sessions (the open batch's telemetry only advances its
 * sequence numbers in place).
 */
int	tspdb_session_find(struct tspdb *, const char *vid,
	    const struct tspdb_session **sp);
/*
 * Read vid's session into memory: TSPDB_OK (tspdb_session_find finds it
 * then) or TSPDB_UNKNOWN (the vehicle has no session).
 */
void	tspdb_session_load(struct tspdb *, const char *vid, struct tspdb_req *);
/*
 * The vehicle's last connection closed: its session leaves memory (after
 * the open batch's commit) and stays in the store.
 */
void	tspdb_session_release(struct tspdb *, const char *vid);
/* Sessions held in memory. */
size_t	tspdb_session_live(const struct tspdb *);
/* At most n K1 cipher contexts (TSPDB_AEAD_POOL), for the sessions in use. */
void	tspdb_session_contexts(struct tspdb *, size_t n);
/*
 * F5 service first.  The record of message seq of vid's session (the one
 * under chip key key_index) is durable: 1 if that session is held in
 * memory and seq raises its s_stored_seq, else 0.
 */
int	tspdb_session_stored(struct tspdb *, const char *vid,
	    uint32_t key_index, uint64_t seq);
/* The stored_seq to tell vid's vehicle, now counted as told; 0: none new. */
uint64_t tspdb_session_tell(struct tspdb *, const char *vid);
/*
 * Take the next cloud->vehicle seq of vid's session for a message that
 * waits for no commit: 1 with *tx_seq and *sp, or 0 if the session is
 * not in memory or the seq lies above its durable ceiling.
 */
int	tspdb_session_next_tx(struct tspdb *, const char *vid,
	    uint64_t *tx_seq, const struct tspdb_session **sp);
/*
 * Store telemetry received in the session under seq and advance rx_seq to
 * seq and tx_seq to tx_seq, in one transaction.  TSPDB_REPLAY if seq is
 * not above rx_seq, TSPDB_UNKNOWN if the session is gone.
 */
void	tspdb_session_telemetry(struct tspdb *, const char *vid, uint64_t seq,
	    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
	    uint64_t now_ms, struct tspdb_req *);
/*
 * End the vehicle's session; TSPDB_UNKNOWN if there was none.  With
 * power_off its authentication ends in the same transaction (F8).  It
 * leaves memory at once.
 */
void	tspdb_session_end(struct tspdb *, const char *vid, int power_off,
	    struct tspdb_req *);
/* TSPDB_OK and *n: rows of telemetry stored for vid. */
void	tspdb_telemetry_count(struct tspdb *, const char *vid, int64_t *n,
	    struct tspdb_req *);

/* ---- F5: group commit ---- */

/*
 * While a batch is open, every other request first calls flush(arg),
 * which commits the batch with tspdb_batch_commit (and answers its
 * messages); without a flush function the store commits the batch itself.
 */
void	tspdb_batch_set_flush(struct tspdb *, void (*flush)(void *),
	    void *arg);
/*
 * Add the telemetry of session message seq to the batch, which it opens
 * if none is, with no request: the result is decided on the session held
 * in memory.  Later calls see the new rx_seq and tx_seq at once; the
 * store gets them with the batch.  *now is 1 when an answer sealed under
 * tx_seq may leave before the commit (tx_seq lies below a durable
 * ceiling), 0 when it must wait for the commit to be durable.  A record
 * whose record id is stored already is not stored again (TSPDB_OK).
 * TSPDB_REPLAY if seq is not above rx_seq, TSPDB_UNKNOWN if the session is
 * not in memory, TSPDB_ERROR if the record cannot join the batch, which
 * is then spoilt: its commit rolls it back (the sequence numbers in
 * memory stay, since answers under them may have left).
 */
enum tspdb_result tspdb_batch_telemetry(struct tspdb *, const char *vid,
	    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
	    const char *tsp_id, uint64_t now_ms, int *now);
/*
 * tspdb_session_open in the batch, answered at the latest with the
 * batch's commit (just before it): TSPDB_OK (the session is in memory
 * then), TSPDB_REUSED (nothing written) or TSPDB_ERROR (the batch was
 * rolled back).  s and d1 are copied.
 */
void	tspdb_batch_session_open(struct tspdb *, const struct tspdb_session *s,
	    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
	    uint64_t now_ms, struct tspdb_req *);
/* 1 if a batch is open. */
int	tspdb_batch_open(struct tspdb *);
/*
 * Commit the open batch: TSPDB_OK (also with none open), or TSPDB_ERROR
 * if the commit or one of its steps failed and it was rolled back.  The
 * next batch may open at once.
 */
void	tspdb_batch_commit(struct tspdb *, struct tspdb_req *);

/* ---- F6: handover ---- */

#define TSPDB_RD1_HISTORY	256	/* telemetry rows of an RD1 at most */

/* Where a telemetry row was first stored: the TSP and its session seq. */
struct tspdb_origin {
	char		 o_tsp[NAME_MAXLEN + 1];
	uint64_t	 o_seq;
};

/*
 * A vehicle's context as TSPA sends it in M8: rd_msg points into the
 * arrays below (history most recent last, one origin per history row).
 * Release with tspdb_rd1_free.
 */
struct tspdb_rd1 {
	Qroam__RD1		 rd_msg;
	char			 rd_vid[VIN_LEN + 1];
	char			 rd_chip_id[CHIP_ID_LEN + 1];
	Qroam__Telemetry	*rd_hist;
	Qroam__Telemetry	**rd_histp;
	struct tspdb_origin	*rd_origin;
	uint32_t		*rd_used;
};

/* What TSPA needs to tell the vehicle that its handover is ready. */
struct tspdb_ready {
	int		 rr_session;	/* 0: the vehicle has no session */
	uint8_t		 rr_k1[CRYPTO_KEYLEN];
	uint64_t	 rr_tx_seq;	/* the seq reserved for HandoverReady */
};

/*
 * Record the state of handover hid (role 'out' or 'in') in handovers,
 * creating the row or updating state, reason and time; vid may be NULL
 * to keep the stored one.  TSPDB_OK.  rq may be NULL: nobody waits, a
 * failure is logged.
 */
void	tspdb_ho_record(struct tspdb *, const char *hid, const char *vid,
	    const char *role, const char *peer, const char *state,
	    const char *reason, uint64_t now_ms, struct tspdb_req *);
/*
 * Handover hid's row: TSPDB_OK while under way with no CK2 bound yet,
 * TSPDB_SAME with CK2 bound (waiting for its M8), TSPDB_STALE once ended
 * (done or failed), TSPDB_UNKNOWN without a row.
 */
void	tspdb_ho_known(struct tspdb *, const char *hid, struct tspdb_req *);
/*
 * Accept session message seq of vid that carries no telemetry: advance
 * rx_seq to seq.  TSPDB_REPLAY if seq is not above rx_seq, TSPDB_UNKNOWN
 * if there is no session.
 */
void	tspdb_session_seq(struct tspdb *, const char *vid, uint64_t seq,
	    struct tspdb_req *);
/*
 * TSPA, M8 acknowledged: in one transaction delete the vehicle's auth row,
 * mark handover hid done and, if the vehicle still has a session, reserve
 * its next cloud->vehicle seq (r->rr_k1 then holds K1; the caller wipes).
 */
void	tspdb_ho_out_done(struct tspdb *, const char *hid, const char *vid,
	    uint64_t now_ms, struct tspdb_ready *r, struct tspdb_req *);
/*
 * Build RD1 for vid from the store: its authentication, the draw mode of
 * its session, the key position and used keys at or after it, and its
 * last TSPDB_RD1_HISTORY telemetry rows.  TSPDB_OK, or TSPDB_UNKNOWN if
 * vid has no auth row here.
 */
void	tspdb_rd1_load(struct tspdb *, const char *vid, struct tspdb_rd1 *,
	    struct tspdb_req *);
void	tspdb_rd1_free(struct tspdb_rd1 *);
/*
 * TSPB: store CK2 of (initiator, hid) until expires_ms and mark the
 * handover row 'bound', in one transaction that also purges expired
 * bindings.  TSPDB_REPLAY if the binding exists already.
 */
void	tspdb_ck2_bind(struct tspdb *, const char *initiator, const char *hid,
	    const uint8_t ck2[CRYPTO_KEYLEN], uint64_t expires_ms,
	    uint64_t now_ms, struct tspdb_req *);
/* TSPDB_OK with ck2 and *expires_ms filled, or TSPDB_UNKNOWN (none). */
void	tspdb_ck2_get(struct tspdb *, const char *initiator, const char *hid,
	    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms,
	    struct tspdb_req *);
/* Delete bindings expired before now_ms (their rows fail); rq as ho_record. */
void	tspdb_ck2_purge(struct tspdb *, uint64_t now_ms, struct tspdb_req *);
/*
 * TSPB: apply a checked RD1 received from initiator, in one transaction:
 * auth row via 'handover', key position max(own, next_index) with the
 * keys below burned, the used keys, the history rows not present yet
 * (origin[i] names row i's TSP and seq), the binding deleted and the
 * handover row done.  TSPDB_UNKNOWN if the binding is gone.
 */
void	tspdb_m8_apply(struct tspdb *, const char *initiator, const char *hid,
	    const Qroam__RD1 *rd1, const struct tspdb_origin *origin,
	    uint64_t now_ms, struct tspdb_req *);

/* ---- operations ---- */

/* What /status and the gauges of /metrics count. */
struct tspdb_counts {
	int64_t		 c_vehicles;		/* registrations */
	int64_t		 c_authenticated;	/* auth rows */
	int64_t		 c_sessions;
	int64_t		 c_handovers;		/* in flight, both roles */
	int64_t		 c_ck2_bindings;	/* not expired */
	int64_t		 c_fills;
};

/* TSPDB_OK and *c: the counts at now_ms. */
void	tspdb_counts(struct tspdb *, uint64_t now_ms, struct tspdb_counts *c,
	    struct tspdb_req *);
/*
 * TSPDB_OK and *out: a JSON array of at most max rows sorted by
 * vehicle_id (sessions, vehicles) or handover_id (handovers in flight at
 * now_ms), holding IDs, indexes, sequence numbers and times only.
 */
void	tspdb_status_sessions(struct tspdb *, size_t max, json_t **out,
	    struct tspdb_req *);
void	tspdb_status_vehicles(struct tspdb *, size_t max, json_t **out,
	    struct tspdb_req *);
void	tspdb_status_handovers(struct tspdb *, uint64_t now_ms, size_t max,
	    json_t **out, struct tspdb_req *);

#endif
