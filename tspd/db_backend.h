/*
 * Behind the TSP store's interface (db.h): the table of operations a
 * backend provides, and what a backend calls to answer.  db_front.c
 * chooses the backend by the store setting and forwards each request; the
 * backend answers it with tspdb_answer, at once if it has the result on
 * the loop (SQLite) or when its database server replies.  The functions
 * with no request work on what the backend holds in memory.
 */
#ifndef TSPD_DB_BACKEND_H
#define TSPD_DB_BACKEND_H

#include "db.h"

/*
 * SQL, for both backends: the authentication in the row auth is still in
 * use at since_ms, the parameter p (0: no limit).  Its last use is the
 * latest of its M4 or handover (authed_ms), the opening of its session
 * and its last telemetry at this TSP: rows the session steps write anyway.
 */
#define TSPDB_AUTH_LIVE(p)						\
	"(CAST(" p " AS bigint) = 0 OR auth.authed_ms >= CAST(" p " AS bigint)"	\
	" OR EXISTS(SELECT 1 FROM sessions s WHERE"			\
	" s.vehicle_id = auth.vehicle_id AND"				\
	" s.opened_ms >= CAST(" p " AS bigint))"			\
	" OR coalesce((SELECT t.received_ms FROM telemetry t"		\
	" WHERE t.vehicle_id = auth.vehicle_id ORDER BY t.id DESC LIMIT 1),"	\
	" 0) >= CAST(" p " AS bigint))"

struct tspdb_backend {
	const char	*be_name;
	int		 be_shared;	/* several instances on one store */
	/* 1 if the store setting spec names a store of this backend. */
	int	(*be_accepts)(const char *spec);
	/* Set the backend's state (tspdb_state) and recover; 0 or -1. */
	int	(*be_open)(struct tspdb *, const char *spec,
		    void (*durable)(uint64_t, void *), void *arg,
		    const char *instance, uint64_t now_ms, int *recovered);
	/* Commit what is open, sync, free the state. */
	void	(*be_close)(struct tspdb *);
	void	(*be_fill_apply)(struct tspdb *, const Qroam__FillRecord *fr,
		    struct tspdb_req *);
	void	(*be_fill_get)(struct tspdb *, const char *chip_id,
		    struct tspdb_fill *f, struct tspdb_req *);
	void	(*be_keypos)(struct tspdb *, const char *chip_id, int64_t *pos,
		    struct tspdb_req *);
	void	(*be_m2_apply)(struct tspdb *, const char *vid,
		    const char *chip_id, const uint8_t *prv, size_t prvlen,
		    uint64_t epoch, uint64_t *old_epoch, struct tspdb_req *);
	void	(*be_reg_get)(struct tspdb *, const char *vid,
		    struct tspdb_reg *r, struct tspdb_req *);
	void	(*be_auth_commit)(struct tspdb *, const char *vid,
		    const char *chip_id, const uint8_t *nonce, size_t noncelen,
		    uint64_t now_ms, uint64_t expires_ms, const char *via,
		    struct tspdb_req *);
	void	(*be_auth_get)(struct tspdb *, const char *vid,
		    uint64_t since_ms, char chip_id[CHIP_ID_LEN + 1],
		    struct tspdb_req *);
	void	(*be_auth_expire)(struct tspdb *, uint64_t since_ms,
		    uint64_t *n, struct tspdb_req *);
	void	(*be_key_select)(struct tspdb *, const char *chip_id,
		    uint32_t index, const char *code, struct tspdb_key *key,
		    struct tspdb_req *);
	void	(*be_session_open)(struct tspdb *,
		    const struct tspdb_session *s, int sequential,
		    const Qroam__Telemetry *d1, const char *tsp_id,
		    uint64_t now_ms, struct tspdb_req *);
	void	(*be_session_get)(struct tspdb *, const char *vid,
		    struct tspdb_session *s, struct tspdb_req *);
	void	(*be_session_load)(struct tspdb *, const char *vid,
		    struct tspdb_req *);
	void	(*be_session_telemetry)(struct tspdb *, const char *vid,
		    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
		    const char *tsp_id, uint64_t now_ms, struct tspdb_req *);
	void	(*be_session_end)(struct tspdb *, const char *vid,
		    int power_off, struct tspdb_req *);
	void	(*be_telemetry_count)(struct tspdb *, const char *vid,
		    int64_t *n, struct tspdb_req *);
	void	(*be_batch_session_open)(struct tspdb *,
		    const struct tspdb_session *s, int sequential,
		    const Qroam__Telemetry *d1, const char *tsp_id,
		    uint64_t now_ms, struct tspdb_req *);
	void	(*be_batch_commit)(struct tspdb *, struct tspdb_req *);
	void	(*be_ho_record)(struct tspdb *, const char *hid,
		    const char *vid, const char *role, const char *peer,
		    const char *state, const char *reason, uint64_t now_ms,
		    struct tspdb_req *);
	void	(*be_ho_known)(struct tspdb *, const char *hid,
		    struct tspdb_req *);
	void	(*be_session_seq)(struct tspdb *, const char *vid, uint64_t seq,
		    struct tspdb_req *);
	void	(*be_ho_out_done)(struct tspdb *, const char *hid,
		    const char *vid, uint64_t now_ms, struct tspdb_ready *r,
		    struct tspdb_req *);
	void	(*be_rd1_load)(struct tspdb *, const char *vid,
		    struct tspdb_rd1 *rd, struct tspdb_req *);
	void	(*be_ck2_bind)(struct tspdb *, const char *initiator,
		    const char *hid, const uint8_t ck2[CRYPTO_KEYLEN],
		    uint64_t expires_ms, uint64_t now_ms, struct tspdb_req *);
	void	(*be_ck2_get)(struct tspdb *, const char *initiator,
		    const char *hid, uint8_t ck2[CRYPTO_KEYLEN],
		    uint64_t *expires_ms, struct tspdb_req *);
	void	(*be_ck2_purge)(struct tspdb *, uint64_t now_ms,
		    struct tspdb_req *);
	void	(*be_m8_apply)(struct tspdb *, const char *initiator,
		    const char *hid, const Qroam__RD1 *rd1,
		    const struct tspdb_origin *origin, uint64_t now_ms,
		    struct tspdb_req *);
	void	(*be_counts)(struct tspdb *, uint64_t now_ms,
		    struct tspdb_counts *c, struct tspdb_req *);
	void	(*be_status_sessions)(struct tspdb *, size_t max, json_t **out,
		    struct tspdb_req *);
	void	(*be_status_vehicles)(struct tspdb *, size_t max, json_t **out,
		    struct tspdb_req *);
	void	(*be_status_handovers)(struct tspdb *, uint64_t now_ms,
		    size_t max, json_t **out, struct tspdb_req *);
	int	(*be_session_find)(struct tspdb *, const char *vid,
		    const struct tspdb_session **sp);
	void	(*be_session_release)(struct tspdb *, const char *vid);
	size_t	(*be_session_live)(const struct tspdb *);
	void	(*be_session_contexts)(struct tspdb *, size_t n);
	int	(*be_session_stored)(struct tspdb *, const char *vid,
		    uint32_t key_index, uint64_t seq);
	uint64_t (*be_session_tell)(struct tspdb *, const char *vid);
	int	(*be_session_next_tx)(struct tspdb *, const char *vid,
		    uint64_t *tx_seq, const struct tspdb_session **sp);
	void	(*be_batch_set_flush)(struct tspdb *, void (*flush)(void *),
		    void *arg);
	enum tspdb_result (*be_batch_telemetry)(struct tspdb *, const char *vid,
		    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
		    const char *tsp_id, uint64_t now_ms, int *now);
	int	(*be_batch_open)(struct tspdb *);
	uint64_t (*be_written)(const struct tspdb *);
	uint64_t (*be_durable)(const struct tspdb *);
};

extern const struct tspdb_backend tspdb_sqlite;
extern const struct tspdb_backend tspdb_postgresql;

/* The loop the store answers on; NULL: answers are given at once. */
struct event_base *tspdb_base(const struct tspdb *);
void	*tspdb_state(const struct tspdb *);
void	 tspdb_set_state(struct tspdb *, void *);
/*
 * Answer request rq with res: its rq_done runs from the loop, after the
 * answers given before (at once without a loop).  rq may be NULL for a
 * change nobody waits for: a failure is then logged.
 */
void	 tspdb_answer(struct tspdb *, struct tspdb_req *rq,
	    enum tspdb_result res);

#endif
