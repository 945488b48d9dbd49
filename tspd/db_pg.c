/*
 * The PostgreSQL backend of the TSP store: a store setting that is a
 * connection URI ("postgresql://...") or a connection string naming a
 * database ("host=... dbname=...").  Several tspd instances of one
 * region share the database, which decides what they race for
 * (db_pg_schema.c says which constraint gives which invariant).
 *
 * One connection per instance, non-blocking and in pipeline mode, on the
 * event loop: a request is one segment of the pipeline (its statements
 * and a sync, so one implicit transaction), sent at once; the answers
 * come back in order and each request is answered when its sync does.
 * Many requests are in flight at once, on one round trip.  The batch
 * (F5's group commit) is one segment that stays open while the loop's
 * pass adds telemetry rows and M3s to it, and is closed by
 * tspdb_batch_commit with the rows of the sessions it advanced; every
 * other request settles it first, as in SQLite, so no step joins it.
 * A commit is durable when PostgreSQL answers it (synchronous_commit),
 * so commits are counted "written" when sent and "durable" when
 * answered.
 *
 * Only start-up blocks: connecting, migrating the schema and preparing
 * the statements, before the loop runs.
 */
#include <sys/queue.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "crypto.h"
#include "log.h"

#include "db_backend.h"
#include "db_live.h"
#include "db_pg.h"

#define PG_MAXPARAM	20
#define PG_ARRAY_INIT	256

enum pg_stmt {
	P_FILL_APPLY,
	P_FILL_GET,
	P_KEYPOS,
	P_M2_APPLY,
	P_REG_GET,
	P_AUTH_COMMIT,
	P_AUTH_GET,
	P_AUTH_EXPIRE,
	P_KEY_SELECT,
	P_SESSION_OPEN,
	P_SESSION_GET,
	P_TELEMETRY_PUT,
	P_SESSION_ROWS,
	P_SESSION_SEQ,
	P_SESSION_END,
	P_TELEMETRY_COUNT,
	P_HO_RECORD,
	P_HO_KNOWN,
	P_HO_OUT_DONE,
	P_RD1_STATE,
	P_RD1_USED,
	P_RD1_HISTORY,
	P_CK2_BIND,
	P_CK2_GET,
	P_CK2_PURGE,
	P_M8_APPLY,
	P_COUNTS,
	P_STATUS_SESSIONS,
	P_STATUS_VEHICLES,
	P_STATUS_HANDOVERS,
	P_COUNT
};

/* A handover in flight: neither done nor failed; incoming: CK2 valid. */
#define PG_INFLIGHT							\
	"state NOT IN ('done', 'failed') AND (role = 'out' OR EXISTS"	\
	" (SELECT 1 FROM ck2_bindings b"				\
	" WHERE b.handover_id = handovers.handover_id"			\
	" AND b.expires_ms >= $1))"

static const struct {
	const char	*ps_name;
	const char	*ps_sql;
} pg_sql[P_COUNT] = {
	[P_FILL_APPLY] = { "fill_apply",
	    "SELECT qroam_fill_apply($1, $2, $3, $4, $5, $6, $7)" },
	[P_FILL_GET] = { "fill_get",
	    "SELECT m, k, n, created_ms FROM fills WHERE chip_id = $1" },
	[P_KEYPOS] = { "keypos", "SELECT coalesce((SELECT next_index"
	    " FROM keypos WHERE chip_id = $1), 0)" },
	[P_M2_APPLY] = { "m2_apply",
	    "SELECT res, old FROM qroam_m2_apply($1, $2, $3, $4)" },
	[P_REG_GET] = { "reg_get", "SELECT chip_id, prv, epoch"
	    " FROM registrations WHERE vehicle_id = $1" },
	[P_AUTH_COMMIT] = { "auth_commit",
	    "SELECT qroam_auth_commit($1, $2, $3, $4, $5, $6)" },
	[P_AUTH_GET] = { "auth_get",
	    "SELECT chip_id FROM auth WHERE vehicle_id = $1 AND "
	    TSPDB_AUTH_LIVE("$2") },
	[P_AUTH_EXPIRE] = { "auth_expire", "WITH d AS (DELETE FROM auth WHERE"
	    " NOT " TSPDB_AUTH_LIVE("$1") " RETURNING 1) SELECT count(*) FROM d" },
	[P_KEY_SELECT] = { "key_select",
	    "SELECT res, k_index, k_key FROM qroam_key_select($1, $2, $3)" },
	[P_SESSION_OPEN] = { "session_open", "SELECT qroam_session_open($1,"
	    " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
	    " $16)" },
	[P_SESSION_GET] = { "session_get", "SELECT chip_id, k1, key_index,"
	    " rx_seq, tx_seq, opened_ms, EXISTS(SELECT 1 FROM auth"
	    " WHERE auth.vehicle_id = $1) FROM sessions WHERE vehicle_id = $1" },
	[P_TELEMETRY_PUT] = { "telemetry_put", "SELECT qroam_telemetry_put($1,"
	    " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)" },
	[P_SESSION_ROWS] = { "session_rows", "UPDATE sessions SET rx_seq = $2,"
	    " tx_seq = $3 WHERE vehicle_id = $1 RETURNING 1" },
	[P_SESSION_SEQ] = { "session_seq",
	    "SELECT qroam_session_seq($1, $2)" },
	[P_SESSION_END] = { "session_end",
	    "SELECT qroam_session_end($1, $2)" },
	[P_TELEMETRY_COUNT] = { "telemetry_count",
	    "SELECT count(*) FROM telemetry WHERE vehicle_id = $1" },
	[P_HO_RECORD] = { "ho_record",
	    "SELECT qroam_ho_record($1, $2, $3, $4, $5, $6, $7, $8)" },
	[P_HO_KNOWN] = { "ho_known", "SELECT state IN ('done', 'failed'),"
	    " state = 'bound' FROM handovers WHERE handover_id = $1" },
	[P_HO_OUT_DONE] = { "ho_out_done",
	    "SELECT res, k1, tx_seq FROM qroam_ho_out_done($1, $2, $3)" },
	[P_RD1_STATE] = { "rd1_state", "SELECT a.chip_id, a.authed_ms, f.m,"
	    " coalesce(k.next_index, 0), coalesce(s.sequential, true)"
	    " FROM auth a JOIN fills f ON f.chip_id = a.chip_id"
	    " LEFT JOIN keypos k ON k.chip_id = a.chip_id"
	    " LEFT JOIN sessions s ON s.vehicle_id = a.vehicle_id"
	    " WHERE a.vehicle_id = $1" },
	[P_RD1_USED] = { "rd1_used", "SELECT u.idx FROM auth a"
	    " JOIN used_keys u ON u.chip_id = a.chip_id"
	    " LEFT JOIN keypos k ON k.chip_id = a.chip_id"
	    " WHERE a.vehicle_id = $1 AND u.idx >= coalesce(k.next_index, 0)"
	    " ORDER BY u.idx" },
	[P_RD1_HISTORY] = { "rd1_history", "SELECT tsp_id, seq, unix_ms, lat,"
	    " lon, speed, heading, fuel, odometer, record_id FROM (SELECT *"
	    " FROM telemetry WHERE vehicle_id = $1 ORDER BY id DESC LIMIT $2)"
	    " t ORDER BY id" },
	[P_CK2_BIND] = { "ck2_bind",
	    "SELECT qroam_ck2_bind($1, $2, $3, $4, $5, $6)" },
	[P_CK2_GET] = { "ck2_get", "SELECT ck2, expires_ms FROM ck2_bindings"
	    " WHERE initiator = $1 AND handover_id = $2" },
	[P_CK2_PURGE] = { "ck2_purge", "SELECT qroam_ck2_expire($1)" },
	[P_M8_APPLY] = { "m8_apply", "SELECT qroam_m8_apply($1, $2, $3, $4,"
	    " $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
	    " $18, $19)" },
	[P_COUNTS] = { "counts", "SELECT (SELECT count(*) FROM registrations),"
	    " (SELECT count(*) FROM auth), (SELECT count(*) FROM sessions),"
	    " (SELECT count(*) FROM handovers WHERE " PG_INFLIGHT "),"
	    " (SELECT count(*) FROM ck2_bindings WHERE expires_ms >= $1),"
	    " (SELECT count(*) FROM fills)" },
	[P_STATUS_SESSIONS] = { "status_sessions", "SELECT coalesce(json_agg("
	    "json_build_object('vehicle_id', vehicle_id, 'chip_id', chip_id,"
	    " 'key_index', key_index, 'rx_seq', rx_seq, 'tx_seq', tx_seq,"
	    " 'opened_ms', opened_ms) ORDER BY vehicle_id), '[]')"
	    " FROM (SELECT * FROM sessions ORDER BY vehicle_id LIMIT $1) s" },
	[P_STATUS_VEHICLES] = { "status_vehicles", "SELECT coalesce(json_agg("
	    "json_build_object('vehicle_id', r.vehicle_id, 'chip_id',"
	    " r.chip_id, 'epoch', r.epoch, 'next_index',"
	    " coalesce(k.next_index, 0), 'authenticated',"
	    " a.vehicle_id IS NOT NULL, 'via', a.via, 'session',"
	    " s.vehicle_id IS NOT NULL) ORDER BY r.vehicle_id), '[]')"
	    " FROM (SELECT * FROM registrations ORDER BY vehicle_id LIMIT $1) r"
	    " LEFT JOIN keypos k ON k.chip_id = r.chip_id"
	    " LEFT JOIN auth a ON a.vehicle_id = r.vehicle_id"
	    " LEFT JOIN sessions s ON s.vehicle_id = r.vehicle_id" },
	[P_STATUS_HANDOVERS] = { "status_handovers", "SELECT coalesce("
	    "json_agg(json_build_object('handover_id', handover_id,"
	    " 'vehicle_id', vehicle_id, 'role', CASE role WHEN 'out' THEN"
	    " 'source' ELSE 'target' END, 'peer', peer, 'state', state,"
	    " 'started_ms', created_ms) ORDER BY handover_id), '[]')"
	    " FROM (SELECT * FROM handovers WHERE " PG_INFLIGHT
	    " ORDER BY handover_id LIMIT $2) h" },
};

struct pgb;
struct pgq;

/* Results of one statement of q's segment, in the order they were sent. */
typedef void	(*pgq_row_fn)(struct pgb *, struct pgq *, int stmt,
		    PGresult *);
/* q's sync came: set q_res (q_failed tells whether a statement failed). */
typedef void	(*pgq_done_fn)(struct pgb *, struct pgq *);

/* An M3 of the batch: its session enters memory once the batch commits. */
struct pg_m3 {
	struct tspdb_req	*m_rq;
	struct tspdb_session	 m_sess;
	enum tspdb_result	 m_res;
};

/* One segment of the pipeline: a request's statements and their sync. */
struct pgq {
	TAILQ_ENTRY(pgq)	 q_entry;
	struct tspdb_req	*q_rq;		/* NULL: nobody waits */
	int			 q_nstmt;	/* statements sent */
	int			 q_stmt;	/* the one whose results come */
	int			 q_failed;
	int			 q_commit;	/* a change: counts as a commit */
	enum tspdb_result	 q_res;
	pgq_row_fn		 q_row;
	pgq_done_fn		 q_done;
	void			*q_out[3];
	char			 q_vid[VIN_LEN + 1];
	/* The batch's M3s. */
	struct pg_m3		*q_m3;
	size_t			 q_nm3;
	size_t			 q_m3cap;
	size_t			 q_m3next;	/* the next to get its result */
	/* The batch's vehicles, out of memory if it fails. */
	char			(*q_vids)[VIN_LEN + 1];
	size_t			 q_nvids;
	size_t			 q_vidcap;
};

TAILQ_HEAD(pgqs, pgq);

struct pgb {
	struct tspdb		*pb_db;
	PGconn			*pb_conn;
	struct event		*pb_rev;
	struct event		*pb_wev;
	struct pgqs		 pb_sent;	/* waiting for their sync */
	struct pgq		*pb_batch;	/* the open batch, not synced */
	void			(*pb_flush)(void *);
	void			*pb_flush_arg;
	void			(*pb_durable)(uint64_t, void *);
	void			*pb_durable_arg;
	uint64_t		 pb_written;	/* commits sent */
	uint64_t		 pb_durable_n;	/* commits answered */
	struct tspdb_ltab	*pb_live;
	int			 pb_broken;
	char			 pb_instance[NAME_MAXLEN + 1];
};

/* Parameters of one statement, as text (libpq's text format). */
struct pgparams {
	const char	*pp_val[PG_MAXPARAM];
	char		*pp_own[PG_MAXPARAM];	/* freed after sending */
	int		 pp_n;
	int		 pp_oom;		/* a value could not be made */
};

static void	pg_read_cb(evutil_socket_t, short, void *);
static void	pg_write_cb(evutil_socket_t, short, void *);
static void	pg_flush(struct pgb *);

static struct pgb *
pb(const struct tspdb *db)
{
	return tspdb_state(db);
}

/* ---- parameters ---- */

static void
pp_text(struct pgparams *pp, const char *s)
{
	pp->pp_val[pp->pp_n++] = s;
}

static void
pp_own(struct pgparams *pp, char *s)
{
	if (s == NULL)
		pp->pp_oom = 1;
	pp->pp_own[pp->pp_n] = s;
	pp->pp_val[pp->pp_n++] = s;
}

static void
pp_fmt(struct pgparams *pp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pp_fmt(struct pgparams *pp, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	pp_own(pp, s);
}

static void
pp_u64(struct pgparams *pp, uint64_t v)
{
	pp_fmt(pp, "%" PRIu64, v);
}

static void
pp_double(struct pgparams *pp, double v)
{
	pp_fmt(pp, "%.17g", v);
}

static void
pp_null(struct pgparams *pp)
{
	pp->pp_val[pp->pp_n++] = NULL;
}

/* bytea in the hex text format "\x...". */
static char *
bytea_hex(const uint8_t *p, size_t len)
{
	char	*s;

	if ((s = malloc(2 * len + 3)) == NULL)
		return NULL;
	s[0] = '\\';
	s[1] = 'x';
	crypto_hex(p, len, s + 2);
	return s;
}

static void
pp_bytea(struct pgparams *pp, const uint8_t *p, size_t len)
{
	pp_own(pp, bytea_hex(p, len));
}

static void
pp_free(struct pgparams *pp)
{
	int	 i;

	for (i = 0; i < pp->pp_n; i++) {
		if (pp->pp_own[i] != NULL)
			crypto_wipe(pp->pp_own[i], strlen(pp->pp_own[i]));
		free(pp->pp_own[i]);
	}
	memset(pp, 0, sizeof(*pp));
}

/* An array literal being built: '{', elements, '}'. */
struct pgarray {
	char	*pa_buf;
	size_t	 pa_len;
	size_t	 pa_cap;
	int	 pa_n;
	int	 pa_oom;
};

static void
pa_add(struct pgarray *pa, const char *s, size_t n)
{
	char	*nb;
	size_t	 cap;

	if (pa->pa_oom)
		return;
	if (pa->pa_len + n + 2 > pa->pa_cap) {
		cap = pa->pa_cap ? pa->pa_cap : PG_ARRAY_INIT;
		while (pa->pa_len + n + 2 > cap)
			cap *= 2;
		if ((nb = realloc(pa->pa_buf, cap)) == NULL) {
			pa->pa_oom = 1;
			return;
		}
		pa->pa_buf = nb;
		pa->pa_cap = cap;
	}
	memcpy(pa->pa_buf + pa->pa_len, s, n);
	pa->pa_len += n;
	pa->pa_buf[pa->pa_len] = '\0';
}

/* Add element s (NULL: SQL NULL), double-quoted: s holds no '"' or '\'. */
static void
pa_elem(struct pgarray *pa, const char *s)
{
	pa_add(pa, pa->pa_n++ == 0 ? "{" : ",", 1);
	if (s == NULL) {
		pa_add(pa, "NULL", 4);
		return;
	}
	pa_add(pa, "\"", 1);
	pa_add(pa, s, strlen(s));
	pa_add(pa, "\"", 1);
}

static void
pa_elemf(struct pgarray *pa, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pa_elemf(struct pgarray *pa, const char *fmt, ...)
{
	char	 buf[64];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pa_elem(pa, buf);
}

/* A bytea element: the hex form's backslash doubled inside the quotes. */
static void
pa_bytea(struct pgarray *pa, const uint8_t *p, size_t len)
{
	char	*hex;

	if ((hex = bytea_hex(p, len)) == NULL) {
		pa->pa_oom = 1;
		return;
	}
	pa_add(pa, pa->pa_n++ == 0 ? "{" : ",", 1);
	pa_add(pa, "\"\\\\", 3);
	pa_add(pa, hex + 1, strlen(hex + 1));
	pa_add(pa, "\"", 1);
	crypto_wipe(hex, strlen(hex));
	free(hex);
}

/* The literal, owned by pp; an empty array if no element was added. */
static void
pp_array(struct pgparams *pp, struct pgarray *pa)
{
	if (pa->pa_n == 0 && !pa->pa_oom)
		pa_add(pa, "{", 1);
	pa_add(pa, "}", 1);
	if (pa->pa_oom) {
		free(pa->pa_buf);
		pa->pa_buf = NULL;
	}
	pp_own(pp, pa->pa_buf);
	memset(pa, 0, sizeof(*pa));
}

/* ---- results ---- */

static const char *
col(PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static uint64_t
col_u64(PGresult *r, int row, int c)
{
	const char	*s = col(r, row, c);

	return s != NULL ? strtoull(s, NULL, 10) : 0;
}

static double
col_double(PGresult *r, int row, int c)
{
	const char	*s = col(r, row, c);

	return s != NULL ? strtod(s, NULL) : 0.0;
}

/* Copy text column c (at most len characters) into out; 0 or -1. */
static int
col_text(PGresult *r, int row, int c, char *out, size_t len)
{
	const char	*s = col(r, row, c);
	size_t		 n;

	if (s == NULL || (n = strlen(s)) > len)
		return -1;
	memcpy(out, s, n + 1);
	return 0;
}

/* A bytea column in the hex format, malloc'd into *p; 0 or -1. */
static int
col_bytea(PGresult *r, int row, int c, uint8_t **p, size_t *len)
{
	const char	*s = col(r, row, c);
	size_t		 n;

	*p = NULL;
	*len = 0;
	if (s == NULL || strncmp(s, "\\x", 2) != 0 ||
	    (n = strlen(s + 2)) % 2 != 0 || (*p = malloc(n / 2 + 1)) == NULL ||
	    crypto_unhex(s + 2, *p, n / 2) == -1) {
		free(*p);
		*p = NULL;
		return -1;
	}
	*len = n / 2;
	return 0;
}

/* A 32-byte key column into key; 0 or -1. */
static int
col_key(PGresult *r, int row, int c, uint8_t key[CRYPTO_KEYLEN])
{
	uint8_t	*p;
	size_t	 n;
	int	 rc = -1;

	if (col_bytea(r, row, c, &p, &n) == 0 && n == CRYPTO_KEYLEN) {
		memcpy(key, p, CRYPTO_KEYLEN);
		rc = 0;
	}
	if (p != NULL)
		crypto_wipe(p, n);
	free(p);
	return rc;
}

/* The result text of a step function: ok, same, stale, ... */
static enum tspdb_result
step_result(const char *s)
{
	static const struct {
		const char		*name;
		enum tspdb_result	 res;
	} names[] = {
		{ "ok", TSPDB_OK }, { "same", TSPDB_SAME },
		{ "stale", TSPDB_STALE }, { "conflict", TSPDB_CONFLICT },
		{ "replay", TSPDB_REPLAY }, { "reused", TSPDB_REUSED },
		{ "unknown", TSPDB_UNKNOWN },
	};
	size_t	 i;

	for (i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].res;
	return TSPDB_ERROR;
}

/* ---- the pipeline ---- */

static struct pgq *
pgq_new(struct tspdb_req *rq, pgq_row_fn row, pgq_done_fn done)
{
	struct pgq	*q;

	q = xcalloc(1, sizeof(*q));
	q->q_rq = rq;
	q->q_row = row;
	q->q_done = done;
	q->q_res = TSPDB_OK;
	return q;
}

static void
pgq_free(struct pgq *q)
{
	size_t	 i;

	for (i = 0; i < q->q_nm3; i++)
		crypto_wipe(&q->q_m3[i].m_sess, sizeof(q->q_m3[i].m_sess));
	free(q->q_m3);
	free(q->q_vids);
	free(q);
}

/* Send statement i with pp as part of q's segment; 0 or -1. */
static int
pg_send(struct pgb *b, struct pgq *q, enum pg_stmt i, struct pgparams *pp)
{
	int	 rc = 0;

	if (pp->pp_oom) {
		log_warnx("store: out of memory");
		rc = -1;
	}
	if (rc == 0 && (b->pb_broken || PQsendQueryPrepared(b->pb_conn,
	    pg_sql[i].ps_name, pp->pp_n, pp->pp_val, NULL, NULL, 0) == 0)) {
		if (!b->pb_broken)
			log_warnx("store: %s", PQerrorMessage(b->pb_conn));
		rc = -1;
	}
	pp_free(pp);
	if (rc == 0)
		q->q_nstmt++;
	else
		q->q_failed = 1;
	return rc;
}

/* End q's segment with a sync and wait for its results. */
static void
pg_sync(struct pgb *b, struct pgq *q)
{
	if (q->q_commit)
		b->pb_written++;
	if (!b->pb_broken && q->q_nstmt > 0 &&
	    PQpipelineSync(b->pb_conn) == 1) {
		TAILQ_INSERT_TAIL(&b->pb_sent, q, q_entry);
		pg_flush(b);
		return;
	}
	/* Nothing went out: answer at once, failed. */
	q->q_failed = 1;
	TAILQ_INSERT_TAIL(&b->pb_sent, q, q_entry);
	if (q->q_nstmt == 0 || b->pb_broken) {
		TAILQ_REMOVE(&b->pb_sent, q, q_entry);
		if (q->q_done != NULL)
			q->q_done(b, q);
		if (q->q_commit)
			b->pb_durable_n++;
		tspdb_answer(b->pb_db, q->q_rq, TSPDB_ERROR);
		pgq_free(q);
	}
}

/* Before any other request: have the open batch committed. */
static void
pg_settle(struct pgb *b)
{
	if (b->pb_batch == NULL)
		return;
	if (b->pb_flush != NULL)
		b->pb_flush(b->pb_flush_arg);
	if (b->pb_batch != NULL)
		tspdb_batch_commit(b->pb_db, NULL);
}

/* A request of one statement i with pp; row parses its result. */
static struct pgq *
pg_request(struct pgb *b, struct tspdb_req *rq, enum pg_stmt i,
    struct pgparams *pp, pgq_row_fn row, pgq_done_fn done, int commit)
{
	struct pgq	*q;

	pg_settle(b);
	q = pgq_new(rq, row, done);
	q->q_commit = commit;
	pg_send(b, q, i, pp);
	return q;
}

static void
pg_flush(struct pgb *b)
{
	int	 r;

	if (b->pb_broken)
		return;
	if ((r = PQflush(b->pb_conn)) == 1)
		event_add(b->pb_wev, NULL);
	else if (r == -1) {
		log_warnx("store: %s", PQerrorMessage(b->pb_conn));
		b->pb_broken = 1;
	}
}

static void
pg_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	pg_flush(arg);
}

/* q's sync came back: answer it. */
static void
pg_finish(struct pgb *b, struct pgq *q)
{
	TAILQ_REMOVE(&b->pb_sent, q, q_entry);
	if (q->q_done != NULL)
		q->q_done(b, q);
	else if (q->q_failed)
		q->q_res = TSPDB_ERROR;
	if (q->q_commit) {
		b->pb_durable_n++;
		if (b->pb_durable != NULL)
			b->pb_durable(b->pb_durable_n, b->pb_durable_arg);
	}
	tspdb_answer(b->pb_db, q->q_rq, q->q_res);
	pgq_free(q);
}

/* The connection is gone: every request in flight fails. */
static void
pg_broken(struct pgb *b)
{
	struct pgq	*q;

	if (!b->pb_broken)
		log_warnx("store: the connection to PostgreSQL is lost: %s",
		    PQerrorMessage(b->pb_conn));
	b->pb_broken = 1;
	event_del(b->pb_rev);
	event_del(b->pb_wev);
	while ((q = TAILQ_FIRST(&b->pb_sent)) != NULL) {
		q->q_failed = 1;
		pg_finish(b, q);
	}
}

static void
pg_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pgb	*b = arg;
	struct pgq	*q;
	PGresult	*r;

	(void)fd;
	(void)ev;
	if (PQconsumeInput(b->pb_conn) == 0) {
		pg_broken(b);
		return;
	}
	while ((q = TAILQ_FIRST(&b->pb_sent)) != NULL &&
	    !PQisBusy(b->pb_conn)) {
		/* Each statement has one result, then NULL: counted by those. */
		if ((r = PQgetResult(b->pb_conn)) == NULL)
			continue;
		switch (PQresultStatus(r)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(r);
			pg_finish(b, q);
			continue;
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			if (!q->q_failed && q->q_row != NULL)
				q->q_row(b, q, q->q_stmt, r);
			break;
		case PGRES_PIPELINE_ABORTED:
			q->q_failed = 1;
			break;
		default:
			log_warnx("store: %s", PQresultErrorMessage(r));
			q->q_failed = 1;
			break;
		}
		q->q_stmt++;
		PQclear(r);
	}
	if (PQstatus(b->pb_conn) == CONNECTION_BAD)
		pg_broken(b);
}

/* ---- result parsers ---- */

/* One row whose first column is a step function's result text. */
static void
row_step(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	(void)b;
	(void)stmt;
	q->q_res = PQntuples(r) == 1 ? step_result(col(r, 0, 0)) :
	    TSPDB_ERROR;
}

/* A lookup: TSPDB_UNKNOWN without a row. */
static void
row_fill(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_fill	*f = q->q_out[0];

	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1) {
		q->q_res = TSPDB_UNKNOWN;
		return;
	}
	f->f_m = (uint32_t)col_u64(r, 0, 0);
	f->f_k = (uint32_t)col_u64(r, 0, 1);
	f->f_n = (uint32_t)col_u64(r, 0, 2);
	f->f_created_ms = col_u64(r, 0, 3);
}

static void
row_i64(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1)
		q->q_res = TSPDB_ERROR;
	else
		*(int64_t *)q->q_out[0] = (int64_t)col_u64(r, 0, 0);
}

static void
row_m2(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	row_step(b, q, stmt, r);
	if (PQntuples(r) == 1)
		*(uint64_t *)q->q_out[0] = col_u64(r, 0, 1);
}

static void
row_reg(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_reg	*reg = q->q_out[0];

	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1) {
		q->q_res = TSPDB_UNKNOWN;
		return;
	}
	if (col_text(r, 0, 0, reg->r_chip_id, CHIP_ID_LEN) == -1 ||
	    col_bytea(r, 0, 1, &reg->r_prv, &reg->r_prvlen) == -1) {
		log_warnx("store: registration unreadable");
		q->q_res = TSPDB_ERROR;
		return;
	}
	reg->r_epoch = col_u64(r, 0, 2);
}

static void
row_auth(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1)
		q->q_res = TSPDB_UNKNOWN;
	else if (col_text(r, 0, 0, q->q_out[0], CHIP_ID_LEN) == -1)
		q->q_res = TSPDB_ERROR;
}

static void
row_key(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_key	*key = q->q_out[0];

	row_step(b, q, stmt, r);
	if (q->q_res != TSPDB_OK)
		return;
	key->k_index = (uint32_t)col_u64(r, 0, 1);
	if (col_key(r, 0, 2, key->k_key) == -1)
		q->q_res = TSPDB_ERROR;
}

/* A session row into s; 1, 0 (none) or -1. */
static int
session_row(PGresult *r, const char *vid, struct tspdb_session *s)
{
	memset(s, 0, sizeof(*s));
	if (PQntuples(r) != 1)
		return 0;
	if (strlen(vid) > VIN_LEN ||
	    col_text(r, 0, 0, s->s_chip_id, CHIP_ID_LEN) == -1 ||
	    col_key(r, 0, 1, s->s_k1) == -1) {
		crypto_wipe(s, sizeof(*s));
		log_warnx("store: session of %s unreadable", vid);
		return -1;
	}
	memcpy(s->s_vid, vid, strlen(vid) + 1);
	s->s_key_index = (uint32_t)col_u64(r, 0, 2);
	s->s_rx_seq = col_u64(r, 0, 3);
	s->s_tx_seq = col_u64(r, 0, 4);
	s->s_opened_ms = col_u64(r, 0, 5);
	s->s_authed = col(r, 0, 6) != NULL && col(r, 0, 6)[0] == 't';
	return 1;
}

static void
row_session(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_session	*s = q->q_out[0];
	uint64_t		 rx, tx;
	int			 n;

	(void)stmt;
	if ((n = session_row(r, q->q_vid, s)) != 1) {
		q->q_res = n == 0 ? TSPDB_UNKNOWN : TSPDB_ERROR;
		return;
	}
	if (tspdb_live_seqs(b->pb_live, q->q_vid, &rx, &tx) == 1) {
		s->s_rx_seq = rx;
		s->s_tx_seq = tx;
	}
}

/* A session read for memory: entered unless one is there already. */
static void
row_load(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_session	 s;
	int			 n;

	(void)stmt;
	if ((n = session_row(r, q->q_vid, &s)) != 1) {
		q->q_res = n == 0 ? TSPDB_UNKNOWN : TSPDB_ERROR;
		return;
	}
	if (tspdb_live_get(b->pb_live, q->q_vid) == NULL &&
	    tspdb_live_enter(b->pb_live, &s) == NULL)
		q->q_res = TSPDB_ERROR;
	crypto_wipe(&s, sizeof(s));
}

static void
row_known(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1)
		q->q_res = TSPDB_UNKNOWN;
	else
		q->q_res = col(r, 0, 0) != NULL && col(r, 0, 0)[0] == 't' ?
		    TSPDB_STALE : col(r, 0, 1) != NULL &&
		    col(r, 0, 1)[0] == 't' ? TSPDB_SAME : TSPDB_OK;
}

static void
row_ready(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_ready	*rr = q->q_out[0];

	row_step(b, q, stmt, r);
	if (q->q_res != TSPDB_OK || col(r, 0, 1) == NULL)
		return;
	if (col_key(r, 0, 1, rr->rr_k1) == -1) {
		q->q_res = TSPDB_ERROR;
		return;
	}
	rr->rr_session = 1;
	rr->rr_tx_seq = col_u64(r, 0, 2);
}

static void
row_ck2(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1) {
		q->q_res = TSPDB_UNKNOWN;
		return;
	}
	if (col_key(r, 0, 0, q->q_out[0]) == -1)
		q->q_res = TSPDB_ERROR;
	else
		*(uint64_t *)q->q_out[1] = col_u64(r, 0, 1);
}

static void
row_counts(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_counts	*c = q->q_out[0];

	(void)b;
	(void)stmt;
	if (PQntuples(r) != 1) {
		q->q_res = TSPDB_ERROR;
		return;
	}
	c->c_vehicles = (int64_t)col_u64(r, 0, 0);
	c->c_authenticated = (int64_t)col_u64(r, 0, 1);
	c->c_sessions = (int64_t)col_u64(r, 0, 2);
	c->c_handovers = (int64_t)col_u64(r, 0, 3);
	c->c_ck2_bindings = (int64_t)col_u64(r, 0, 4);
	c->c_fills = (int64_t)col_u64(r, 0, 5);
}

static void
row_json(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	json_t		**out = q->q_out[0], *o;
	const char	*vid;
	uint64_t	 rx, tx;
	size_t		 i;

	(void)stmt;
	if (PQntuples(r) != 1 || col(r, 0, 0) == NULL ||
	    (*out = json_loads(col(r, 0, 0), 0, NULL)) == NULL) {
		q->q_res = TSPDB_ERROR;
		return;
	}
	if (q->q_out[1] == NULL)
		return;
	/* Sessions: the ones in memory are ahead of their rows. */
	json_array_foreach(*out, i, o) {
		vid = json_string_value(json_object_get(o, "vehicle_id"));
		if (vid == NULL || tspdb_live_seqs(b->pb_live, vid, &rx,
		    &tx) != 1)
			continue;
		json_object_set_new(o, "rx_seq", json_integer((json_int_t)rx));
		json_object_set_new(o, "tx_seq", json_integer((json_int_t)tx));
	}
}

/* ---- RD1 ---- */

static void
row_rd1(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct tspdb_rd1	*rd = q->q_out[0];
	Qroam__Telemetry	*t;
	int			 i, n;
	uint32_t		 m = (uint32_t)(uintptr_t)q->q_out[1];

	(void)b;
	if (q->q_res != TSPDB_OK)
		return;
	switch (stmt) {
	case 0:
		if (PQntuples(r) != 1) {
			q->q_res = TSPDB_UNKNOWN;
			return;
		}
		if (col_text(r, 0, 0, rd->rd_chip_id, CHIP_ID_LEN) == -1) {
			q->q_res = TSPDB_ERROR;
			return;
		}
		rd->rd_msg.authed_ms = col_u64(r, 0, 1);
		m = (uint32_t)col_u64(r, 0, 2);
		q->q_out[1] = (void *)(uintptr_t)m;
		rd->rd_msg.next_index = (uint32_t)col_u64(r, 0, 3);
		rd->rd_msg.sequential = col(r, 0, 4) != NULL &&
		    col(r, 0, 4)[0] == 't';
		if (rd->rd_msg.next_index > m ||
		    (rd->rd_used = calloc(m ? m : 1,
		    sizeof(*rd->rd_used))) == NULL)
			q->q_res = TSPDB_ERROR;
		rd->rd_msg.vehicle_id = rd->rd_vid;
		rd->rd_msg.chip_id = rd->rd_chip_id;
		break;
	case 1:
		n = PQntuples(r);
		if ((uint32_t)n > m) {
			q->q_res = TSPDB_ERROR;
			return;
		}
		for (i = 0; i < n; i++) {
			if (col_u64(r, i, 0) >= m) {
				q->q_res = TSPDB_ERROR;
				return;
			}
			rd->rd_used[i] = (uint32_t)col_u64(r, i, 0);
		}
		rd->rd_msg.n_used = (size_t)n;
		rd->rd_msg.used = rd->rd_used;
		break;
	case 2:
		n = PQntuples(r);
		if (n > TSPDB_RD1_HISTORY) {
			q->q_res = TSPDB_ERROR;
			return;
		}
		for (i = 0; i < n; i++) {
			t = &rd->rd_hist[i];
			qroam__telemetry__init(t);
			if (col_text(r, i, 0, rd->rd_origin[i].o_tsp,
			    NAME_MAXLEN) == -1) {
				q->q_res = TSPDB_ERROR;
				return;
			}
			rd->rd_origin[i].o_seq = col_u64(r, i, 1);
			t->unix_ms = col_u64(r, i, 2);
			t->lat = col_double(r, i, 3);
			t->lon = col_double(r, i, 4);
			t->speed = col_double(r, i, 5);
			t->heading = col_double(r, i, 6);
			if ((t->has_fuel = col(r, i, 7) != NULL))
				t->fuel = col_double(r, i, 7);
			if ((t->has_odometer = col(r, i, 8) != NULL))
				t->odometer = col_double(r, i, 8);
			if ((t->has_record_id = col(r, i, 9) != NULL))
				t->record_id = col_u64(r, i, 9);
			rd->rd_histp[i] = t;
		}
		rd->rd_msg.n_history = (size_t)n;
		rd->rd_msg.history = rd->rd_histp;
		break;
	}
}

/* An RD1 that could not be read completely is freed. */
static void
done_rd1(struct pgb *b, struct pgq *q)
{
	(void)b;
	if (q->q_failed)
		q->q_res = TSPDB_ERROR;
	if (q->q_res != TSPDB_OK)
		tspdb_rd1_free(q->q_out[0]);
}

static void
done_failed(struct pgb *b, struct pgq *q)
{
	(void)b;
	if (q->q_failed)
		q->q_res = TSPDB_ERROR;
}

/* ---- the backend's operations ---- */

/* A connection URI, or a key=value connection string naming a database. */
static int
pg_accepts(const char *spec)
{
	return strncmp(spec, "postgresql://", 13) == 0 ||
	    strncmp(spec, "postgres://", 11) == 0 ||
	    strstr(spec, "dbname=") != NULL;
}

/* Run sql at start-up, blocking; 0 or -1. */
static int
pg_exec(PGconn *c, const char *sql)
{
	PGresult	*r;
	int		 rc = 0;

	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warnx("store: %s", PQresultErrorMessage(r));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

/*
 * Bring the schema to the newest version, each step in a transaction; an
 * advisory lock keeps instances starting together from racing.
 */
static int
pg_migrate(PGconn *c)
{
	PGresult	*r;
	char		 sql[128];
	size_t		 v, i;

	if (pg_exec(c, "SELECT pg_advisory_lock(7126001)") == -1 ||
	    pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_version("
	    "version int NOT NULL)") == -1)
		return -1;
	r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_version");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		log_warnx("store: %s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	v = (size_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (v > tspdb_pg_nmigrations) {
		log_warnx("store: schema version %zu is newer than this tspd's "
		    "%zu", v, tspdb_pg_nmigrations);
		return -1;
	}
	for (i = v; i < tspdb_pg_nmigrations; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version "
		    "VALUES(%zu)", i + 1);
		if (pg_exec(c, "BEGIN") == -1 ||
		    pg_exec(c, tspdb_pg_migrations[i]) == -1 ||
		    pg_exec(c, sql) == -1 || pg_exec(c, "COMMIT") == -1) {
			pg_exec(c, "ROLLBACK");
			return -1;
		}
		log_info("store: schema migrated to version %zu", i + 1);
	}
	return pg_exec(c, "SELECT pg_advisory_unlock(7126001)");
}

static uint64_t
live_written(void *arg)
{
	return ((struct pgb *)arg)->pb_written;
}

static uint64_t
live_durable(void *arg)
{
	return ((struct pgb *)arg)->pb_durable_n;
}

static void
live_settle(void *arg)
{
	pg_settle(arg);
}

static const struct tspdb_live_io pg_live_io = {
	.li_written = live_written,
	.li_durable = live_durable,
	.li_settle = live_settle,
};

/* The server's notices (NOTICE, WARNING) go to the log, not to stderr. */
static void
pg_notice(void *arg, const char *message)
{
	size_t	 n = strlen(message);

	(void)arg;
	log_debug("store: PostgreSQL: %.*s", (int)(n > 0 &&
	    message[n - 1] == '\n' ? n - 1 : n), message);
}

static void
pg_free(struct pgb *b)
{
	if (b->pb_rev != NULL)
		event_free(b->pb_rev);
	if (b->pb_wev != NULL)
		event_free(b->pb_wev);
	if (b->pb_live != NULL)
		tspdb_live_free(b->pb_live);
	PQfinish(b->pb_conn);
	free(b);
}

static int
pg_open(struct tspdb *db, const char *spec,
    void (*durable)(uint64_t, void *), void *arg, const char *instance,
    uint64_t now_ms, int *recovered)
{
	struct event_base	*base = tspdb_base(db);
	struct pgb		*b;
	PGresult		*r;
	char			 now[32];
	const char		*v[2] = { now, instance };
	size_t			 i;

	if (base == NULL) {
		log_warnx("store %s: PostgreSQL needs the event loop", spec);
		return -1;
	}
	b = xcalloc(1, sizeof(*b));
	b->pb_db = db;
	b->pb_durable = durable;
	b->pb_durable_arg = arg;
	snprintf(b->pb_instance, sizeof(b->pb_instance), "%s", instance);
	TAILQ_INIT(&b->pb_sent);
	b->pb_conn = PQconnectdb(spec);
	if (PQstatus(b->pb_conn) != CONNECTION_OK) {
		log_warnx("store: cannot connect to PostgreSQL: %s",
		    PQerrorMessage(b->pb_conn));
		pg_free(b);
		return -1;
	}
	PQsetNoticeProcessor(b->pb_conn, pg_notice, NULL);
	if (pg_migrate(b->pb_conn) == -1) {
		pg_free(b);
		return -1;
	}
	for (i = 0; i < P_COUNT; i++) {
		r = PQprepare(b->pb_conn, pg_sql[i].ps_name, pg_sql[i].ps_sql,
		    0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_warnx("store: preparing %s: %s", pg_sql[i].ps_name,
			    PQresultErrorMessage(r));
			PQclear(r);
			pg_free(b);
			return -1;
		}
		PQclear(r);
	}
	/* Handovers this instance left unfinished have failed. */
	snprintf(now, sizeof(now), "%" PRIu64, now_ms);
	r = PQexecParams(b->pb_conn, "UPDATE handovers SET state = 'failed',"
	    " reason = 'tspd restarted', updated_ms = $1"
	    " WHERE state NOT IN ('done', 'failed', 'bound')"
	    " AND instance = $2", 2, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_warnx("store: %s", PQresultErrorMessage(r));
		PQclear(r);
		pg_free(b);
		return -1;
	}
	*recovered = atoi(PQcmdTuples(r));
	PQclear(r);
	r = PQexecParams(b->pb_conn, "SELECT qroam_ck2_expire($1)", 1, NULL, v,
	    NULL, NULL, 0);
	PQclear(r);
	if (PQsetnonblocking(b->pb_conn, 1) == -1 ||
	    PQenterPipelineMode(b->pb_conn) == 0 ||
	    (b->pb_rev = event_new(base, PQsocket(b->pb_conn),
	    EV_READ | EV_PERSIST, pg_read_cb, b)) == NULL ||
	    (b->pb_wev = event_new(base, PQsocket(b->pb_conn), EV_WRITE,
	    pg_write_cb, b)) == NULL || event_add(b->pb_rev, NULL) == -1) {
		log_warnx("store: cannot enter pipeline mode: %s",
		    PQerrorMessage(b->pb_conn));
		pg_free(b);
		return -1;
	}
	b->pb_live = tspdb_live_new(&pg_live_io, b);
	tspdb_set_state(db, b);
	return 0;
}

static void
pg_close(struct tspdb *db)
{
	struct pgb	*b = pb(db);

	pg_settle(b);
	/* What is in flight is answered before the connection goes. */
	while (!TAILQ_EMPTY(&b->pb_sent) && !b->pb_broken)
		event_base_loop(tspdb_base(db), EVLOOP_ONCE);
	tspdb_set_state(db, NULL);
	pg_free(b);
}

static void
pg_fill_apply(struct tspdb *db, const Qroam__FillRecord *fr,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgarray	 codes = { 0 }, keys = { 0 };
	size_t		 i;

	for (i = 0; i < fr->n_keys; i++) {
		pa_elem(&codes, fr->keys[i]->code);
		pa_bytea(&keys, fr->keys[i]->key.data, fr->keys[i]->key.len);
	}
	pp_text(&pp, fr->chip_id);
	pp_u64(&pp, fr->m);
	pp_u64(&pp, fr->k);
	pp_u64(&pp, fr->n);
	pp_u64(&pp, fr->created_ms);
	pp_array(&pp, &codes);
	pp_array(&pp, &keys);
	pg_sync(b, pg_request(b, rq, P_FILL_APPLY, &pp, row_step, done_failed,
	    1));
}

static void
pg_fill_get(struct tspdb *db, const char *chip_id, struct tspdb_fill *f,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, chip_id);
	q = pg_request(b, rq, P_FILL_GET, &pp, row_fill, done_failed, 0);
	q->q_out[0] = f;
	pg_sync(b, q);
}

static void
pg_keypos(struct tspdb *db, const char *chip_id, int64_t *pos,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, chip_id);
	q = pg_request(b, rq, P_KEYPOS, &pp, row_i64, done_failed, 0);
	q->q_out[0] = pos;
	pg_sync(b, q);
}

static void
pg_m2_apply(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *prv, size_t prvlen, uint64_t epoch, uint64_t *old_epoch,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	*old_epoch = 0;
	tspdb_live_forget(b->pb_live, vid);
	pp_text(&pp, vid);
	pp_text(&pp, chip_id);
	pp_bytea(&pp, prv, prvlen);
	pp_u64(&pp, epoch);
	q = pg_request(b, rq, P_M2_APPLY, &pp, row_m2, done_failed, 1);
	q->q_out[0] = old_epoch;
	pg_sync(b, q);
}

static void
pg_reg_get(struct tspdb *db, const char *vid, struct tspdb_reg *r,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	memset(r, 0, sizeof(*r));
	pp_text(&pp, vid);
	q = pg_request(b, rq, P_REG_GET, &pp, row_reg, done_failed, 0);
	q->q_out[0] = r;
	pg_sync(b, q);
}

static void
pg_auth_commit(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *nonce, size_t noncelen, uint64_t now_ms,
    uint64_t expires_ms, const char *via, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	tspdb_live_forget(b->pb_live, vid);
	pp_text(&pp, vid);
	pp_text(&pp, chip_id);
	pp_bytea(&pp, nonce, noncelen);
	pp_u64(&pp, now_ms);
	pp_u64(&pp, expires_ms);
	pp_text(&pp, via);
	pg_sync(b, pg_request(b, rq, P_AUTH_COMMIT, &pp, row_step,
	    done_failed, 1));
}

static void
pg_auth_get(struct tspdb *db, const char *vid, uint64_t since_ms,
    char chip_id[CHIP_ID_LEN + 1], struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, vid);
	pp_u64(&pp, since_ms);
	q = pg_request(b, rq, P_AUTH_GET, &pp, row_auth, done_failed, 0);
	q->q_out[0] = chip_id;
	pg_sync(b, q);
}

static void
pg_auth_expire(struct tspdb *db, uint64_t since_ms, uint64_t *n,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_u64(&pp, since_ms);
	q = pg_request(b, rq, P_AUTH_EXPIRE, &pp, row_i64, done_failed, 1);
	q->q_out[0] = n;	/* a count: row_i64's int64_t, as uint64_t */
	pg_sync(b, q);
}

static void
pg_key_select(struct tspdb *db, const char *chip_id, uint32_t index,
    const char *code, struct tspdb_key *key, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, chip_id);
	if (code == NULL) {
		pp_u64(&pp, index);
		pp_null(&pp);
	} else {
		pp_null(&pp);
		pp_text(&pp, code);
	}
	q = pg_request(b, rq, P_KEY_SELECT, &pp, row_key, done_failed, 0);
	q->q_out[0] = key;
	pg_sync(b, q);
}

/* The parameters of telemetry t after the ones before it. */
static void
pp_telemetry(struct pgparams *pp, const Qroam__Telemetry *t)
{
	pp_u64(pp, t->unix_ms);
	pp_double(pp, t->lat);
	pp_double(pp, t->lon);
	pp_double(pp, t->speed);
	pp_double(pp, t->heading);
	if (t->has_fuel)
		pp_double(pp, t->fuel);
	else
		pp_null(pp);
	if (t->has_odometer)
		pp_double(pp, t->odometer);
	else
		pp_null(pp);
}

/* Send qroam_session_open for s as a statement of q. */
static int
pg_send_session_open(struct pgb *b, struct pgq *q,
    const struct tspdb_session *s, int sequential, const Qroam__Telemetry *d1,
    const char *tsp_id, uint64_t now_ms)
{
	struct pgparams	 pp = { 0 };

	pp_text(&pp, s->s_vid);
	pp_text(&pp, s->s_chip_id);
	pp_bytea(&pp, s->s_k1, sizeof(s->s_k1));
	pp_u64(&pp, s->s_key_index);
	pp_text(&pp, sequential ? "true" : "false");
	pp_u64(&pp, now_ms);
	pp_u64(&pp, TSPDB_TX_AHEAD);
	pp_text(&pp, tsp_id);
	pp_telemetry(&pp, d1);
	if (d1->has_record_id)
		pp_u64(&pp, d1->record_id);
	else
		pp_null(&pp);
	return pg_send(b, q, P_SESSION_OPEN, &pp);
}

/* The session of an M3 opened alone: it enters memory. */
static void
done_session_open(struct pgb *b, struct pgq *q)
{
	if (q->q_failed)
		q->q_res = TSPDB_ERROR;
	if (q->q_res == TSPDB_OK && q->q_nm3 == 1)
		tspdb_live_put(b->pb_live, &q->q_m3[0].m_sess, TSPDB_TX_AHEAD);
}

/* Keep s for memory, as the batch's (or a lone M3's) n-th session. */
static struct pg_m3 *
pgq_m3(struct pgq *q, const struct tspdb_session *s, uint64_t now_ms,
    struct tspdb_req *rq)
{
	struct pg_m3	*m;
	size_t		 cap;

	if (q->q_nm3 == q->q_m3cap) {
		cap = q->q_m3cap ? 2 * q->q_m3cap : 8;
		q->q_m3 = xreallocarray(q->q_m3, cap, sizeof(*q->q_m3));
		q->q_m3cap = cap;
	}
	m = &q->q_m3[q->q_nm3++];
	memset(m, 0, sizeof(*m));
	m->m_rq = rq;
	m->m_sess = *s;
	m->m_sess.s_rx_seq = 0;
	m->m_sess.s_tx_seq = 1;
	m->m_sess.s_opened_ms = now_ms;
	m->m_sess.s_authed = 1;
	m->m_sess.s_stored_seq = m->m_sess.s_stored_told = 0;
	m->m_sess.s_aead = NULL;
	m->m_res = TSPDB_ERROR;
	return m;
}

static void
pg_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgq	*q;

	pg_settle(b);
	tspdb_live_forget(b->pb_live, s->s_vid);
	q = pgq_new(rq, row_step, done_session_open);
	q->q_commit = 1;
	pgq_m3(q, s, now_ms, NULL);
	pg_send_session_open(b, q, s, sequential, d1, tsp_id, now_ms);
	pg_sync(b, q);
}

static void
pg_session_get(struct tspdb *db, const char *vid, struct tspdb_session *s,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, vid);
	q = pg_request(b, rq, P_SESSION_GET, &pp, row_session, done_failed, 0);
	snprintf(q->q_vid, sizeof(q->q_vid), "%s", vid);
	q->q_out[0] = s;
	pg_sync(b, q);
}

static void
pg_session_load(struct tspdb *db, const char *vid, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, vid);
	q = pg_request(b, rq, P_SESSION_GET, &pp, row_load, done_failed, 0);
	snprintf(q->q_vid, sizeof(q->q_vid), "%s", vid);
	pg_sync(b, q);
}

/* Send the telemetry row of seq as a statement of q. */
static int
pg_send_telemetry(struct pgb *b, struct pgq *q, const char *vid,
    const char *tsp_id, uint64_t seq, const Qroam__Telemetry *t,
    uint64_t now_ms)
{
	struct pgparams	 pp = { 0 };

	pp_text(&pp, vid);
	pp_text(&pp, tsp_id);
	pp_u64(&pp, seq);
	pp_telemetry(&pp, t);
	pp_u64(&pp, now_ms);
	if (t->has_record_id)
		pp_u64(&pp, t->record_id);
	else
		pp_null(&pp);
	return pg_send(b, q, P_TELEMETRY_PUT, &pp);
}

/* A session row whose update found nothing fails the segment. */
static void
row_rows(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	(void)b;
	(void)stmt;
	if (PQcmdTuples(r)[0] == '0')
		q->q_failed = 1;
}

/* Write one entry's numbers to its row, a statement of the batch. */
static int
pg_row_write(void *arg, const char *vid, uint64_t rx_seq, uint64_t ceiling)
{
	struct pgb	*b = arg;
	struct pgparams	 pp = { 0 };

	pp_text(&pp, vid);
	pp_u64(&pp, rx_seq);
	pp_u64(&pp, ceiling);
	return pg_send(b, b->pb_batch, P_SESSION_ROWS, &pp);
}

/*
 * The batch's parser: statements are telemetry rows, M3s (whose results
 * are theirs) and session rows; q_m3's m_res are filled in order.
 */
static void
row_batch(struct pgb *b, struct pgq *q, int stmt, PGresult *r)
{
	struct pg_m3	*m;

	if (PQnfields(r) == 1 && strcmp(PQfname(r, 0),
	    "qroam_session_open") == 0) {
		if (q->q_m3next < q->q_nm3) {
			m = &q->q_m3[q->q_m3next++];
			m->m_res = PQntuples(r) == 1 ?
			    step_result(col(r, 0, 0)) : TSPDB_ERROR;
		}
		return;
	}
	if (PQnfields(r) == 1 && strcmp(PQfname(r, 0), "?column?") == 0)
		row_rows(b, q, stmt, r);
}

/*
 * The batch committed or not: its M3s are answered before it, their
 * sessions in memory if it did; if it did not, the sessions it advanced
 * leave memory, to be read again from their rows (answers under numbers
 * above the durable ceilings never left).
 */
static void
done_batch(struct pgb *b, struct pgq *q)
{
	struct pg_m3	*m;
	size_t		 i;
	int		 ok = !q->q_failed;

	for (i = 0; i < q->q_nm3; i++) {
		m = &q->q_m3[i];
		if (!ok)
			m->m_res = TSPDB_ERROR;
		else if (m->m_res == TSPDB_OK)
			tspdb_live_put(b->pb_live, &m->m_sess, TSPDB_TX_AHEAD);
		tspdb_answer(b->pb_db, m->m_rq, m->m_res);
	}
	q->q_res = ok ? TSPDB_OK : TSPDB_ERROR;
	if (ok)
		return;
	log_warnx("store: a telemetry batch was rolled back");
	for (i = 0; i < q->q_nvids; i++)
		tspdb_live_forget(b->pb_live, q->q_vids[i]);
}

/* The open batch, opened if need be. */
static struct pgq *
pg_batch(struct pgb *b)
{
	if (b->pb_batch == NULL) {
		b->pb_batch = pgq_new(NULL, row_batch, done_batch);
		b->pb_batch->q_commit = 1;
	}
	return b->pb_batch;
}

static enum tspdb_result
pg_batch_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, int *now)
{
	struct pgb		*b = pb(db);
	struct tspdb_live	*sl;
	struct pgq		*q;
	size_t			 cap;

	*now = 0;
	if (strlen(vid) > VIN_LEN ||
	    (sl = tspdb_live_get(b->pb_live, vid)) == NULL)
		return TSPDB_UNKNOWN;
	if (seq <= tspdb_live_session(sl)->s_rx_seq)
		return TSPDB_REPLAY;
	q = pg_batch(b);
	if (pg_send_telemetry(b, q, vid, tsp_id, seq, t, now_ms) == -1)
		return TSPDB_ERROR;
	if (q->q_nvids == q->q_vidcap) {
		cap = q->q_vidcap ? 2 * q->q_vidcap : 64;
		q->q_vids = xreallocarray(q->q_vids, cap, sizeof(*q->q_vids));
		q->q_vidcap = cap;
	}
	memcpy(q->q_vids[q->q_nvids++], vid, strlen(vid) + 1);
	*now = tspdb_live_advance(b->pb_live, sl, seq, tx_seq);
	return TSPDB_OK;
}

static void
pg_batch_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgq	*q;

	tspdb_live_forget(b->pb_live, s->s_vid);
	q = pg_batch(b);
	pgq_m3(q, s, now_ms, rq);
	pg_send_session_open(b, q, s, sequential, d1, tsp_id, now_ms);
}

static int
pg_batch_open(struct tspdb *db)
{
	return pb(db)->pb_batch != NULL;
}

static void
pg_batch_commit(struct tspdb *db, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgq	*q = b->pb_batch;

	if (q == NULL) {
		tspdb_answer(db, rq, TSPDB_OK);
		return;
	}
	q->q_rq = rq;
	if (tspdb_live_dirty(b->pb_live, pg_row_write, b) == -1)
		q->q_failed = 1;
	b->pb_batch = NULL;
	/*
	 * The rows are sent: the entries count as written by this commit,
	 * durable once it is answered.  A failed commit takes the sessions
	 * it advanced out of memory (done_batch).
	 */
	pg_sync(b, q);
	tspdb_live_settled(b->pb_live, 1);
}

/*
 * Telemetry outside a batch: a batch of one, committed at once.  The
 * session must be in memory (tspdb_session_load); else TSPDB_UNKNOWN.
 */
static void
pg_session_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	struct pgb		*b = pb(db);
	enum tspdb_result	 res;
	int			 now;

	pg_settle(b);
	if ((res = pg_batch_telemetry(db, vid, seq, tx_seq, t, tsp_id, now_ms,
	    &now)) != TSPDB_OK) {
		if (b->pb_batch != NULL)
			pg_batch_commit(db, NULL);
		tspdb_answer(db, rq, res);
		return;
	}
	pg_batch_commit(db, rq);
}

static void
pg_session_end(struct tspdb *db, const char *vid, int power_off,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	tspdb_live_forget(b->pb_live, vid);
	pp_text(&pp, vid);
	pp_text(&pp, power_off ? "true" : "false");
	pg_sync(b, pg_request(b, rq, P_SESSION_END, &pp, row_step,
	    done_failed, 1));
}

static void
pg_telemetry_count(struct tspdb *db, const char *vid, int64_t *n,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, vid);
	q = pg_request(b, rq, P_TELEMETRY_COUNT, &pp, row_i64, done_failed, 0);
	q->q_out[0] = n;
	pg_sync(b, q);
}

static void
pg_ho_record(struct tspdb *db, const char *hid, const char *vid,
    const char *role, const char *peer, const char *state,
    const char *reason, uint64_t now_ms, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	pp_text(&pp, hid);
	pp_text(&pp, vid);
	pp_text(&pp, role);
	pp_text(&pp, peer);
	pp_text(&pp, state);
	pp_text(&pp, reason);
	pp_u64(&pp, now_ms);
	pp_text(&pp, b->pb_instance);
	pg_sync(b, pg_request(b, rq, P_HO_RECORD, &pp, NULL, done_failed, 1));
}

static void
pg_ho_known(struct tspdb *db, const char *hid, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	pp_text(&pp, hid);
	pg_sync(b, pg_request(b, rq, P_HO_KNOWN, &pp, row_known, done_failed,
	    0));
}

static void
pg_session_seq(struct tspdb *db, const char *vid, uint64_t seq,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	tspdb_live_forget(b->pb_live, vid);
	pp_text(&pp, vid);
	pp_u64(&pp, seq);
	pg_sync(b, pg_request(b, rq, P_SESSION_SEQ, &pp, row_step,
	    done_failed, 1));
}

static void
pg_ho_out_done(struct tspdb *db, const char *hid, const char *vid,
    uint64_t now_ms, struct tspdb_ready *r, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	memset(r, 0, sizeof(*r));
	tspdb_live_forget(b->pb_live, vid);
	pp_text(&pp, hid);
	pp_text(&pp, vid);
	pp_u64(&pp, now_ms);
	q = pg_request(b, rq, P_HO_OUT_DONE, &pp, row_ready, done_failed, 1);
	q->q_out[0] = r;
	pg_sync(b, q);
}

static void
pg_rd1_load(struct tspdb *db, const char *vid, struct tspdb_rd1 *rd,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	memset(rd, 0, sizeof(*rd));
	qroam__rd1__init(&rd->rd_msg);
	pg_settle(b);
	q = pgq_new(rq, row_rd1, done_rd1);
	q->q_out[0] = rd;
	if (strlen(vid) > VIN_LEN ||
	    (rd->rd_hist = calloc(TSPDB_RD1_HISTORY,
	    sizeof(*rd->rd_hist))) == NULL ||
	    (rd->rd_histp = calloc(TSPDB_RD1_HISTORY,
	    sizeof(*rd->rd_histp))) == NULL ||
	    (rd->rd_origin = calloc(TSPDB_RD1_HISTORY,
	    sizeof(*rd->rd_origin))) == NULL) {
		q->q_failed = 1;
		pg_sync(b, q);
		return;
	}
	memcpy(rd->rd_vid, vid, strlen(vid) + 1);
	pp_text(&pp, vid);
	if (pg_send(b, q, P_RD1_STATE, &pp) == 0) {
		pp_text(&pp, vid);
		if (pg_send(b, q, P_RD1_USED, &pp) == 0) {
			pp_text(&pp, vid);
			pp_u64(&pp, TSPDB_RD1_HISTORY);
			pg_send(b, q, P_RD1_HISTORY, &pp);
		}
	}
	pg_sync(b, q);
}

static void
pg_ck2_bind(struct tspdb *db, const char *initiator, const char *hid,
    const uint8_t ck2[CRYPTO_KEYLEN], uint64_t expires_ms, uint64_t now_ms,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	pp_text(&pp, initiator);
	pp_text(&pp, hid);
	pp_bytea(&pp, ck2, CRYPTO_KEYLEN);
	pp_u64(&pp, expires_ms);
	pp_u64(&pp, now_ms);
	pp_text(&pp, b->pb_instance);
	pg_sync(b, pg_request(b, rq, P_CK2_BIND, &pp, row_step, done_failed,
	    1));
}

static void
pg_ck2_get(struct tspdb *db, const char *initiator, const char *hid,
    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	pp_text(&pp, initiator);
	pp_text(&pp, hid);
	q = pg_request(b, rq, P_CK2_GET, &pp, row_ck2, done_failed, 0);
	q->q_out[0] = ck2;
	q->q_out[1] = expires_ms;
	pg_sync(b, q);
}

static void
pg_ck2_purge(struct tspdb *db, uint64_t now_ms, struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };

	pp_u64(&pp, now_ms);
	pg_sync(b, pg_request(b, rq, P_CK2_PURGE, &pp, NULL, done_failed, 1));
}

static void
pg_m8_apply(struct tspdb *db, const char *initiator, const char *hid,
    const Qroam__RD1 *rd1, const struct tspdb_origin *origin, uint64_t now_ms,
    struct tspdb_req *rq)
{
	struct pgb		*b = pb(db);
	struct pgparams		 pp = { 0 };
	struct pgarray		 used = { 0 }, a[10];
	const Qroam__Telemetry	*t;
	size_t			 i;
	int			 k;

	memset(a, 0, sizeof(a));
	tspdb_live_forget(b->pb_live, rd1->vehicle_id);
	for (i = 0; i < rd1->n_used; i++)
		pa_elemf(&used, "%u", rd1->used[i]);
	for (i = 0; i < rd1->n_history; i++) {
		t = rd1->history[i];
		pa_elem(&a[0], origin[i].o_tsp);
		pa_elemf(&a[1], "%" PRIu64, origin[i].o_seq);
		pa_elemf(&a[2], "%" PRIu64, t->unix_ms);
		pa_elemf(&a[3], "%.17g", t->lat);
		pa_elemf(&a[4], "%.17g", t->lon);
		pa_elemf(&a[5], "%.17g", t->speed);
		pa_elemf(&a[6], "%.17g", t->heading);
		if (t->has_fuel)
			pa_elemf(&a[7], "%.17g", t->fuel);
		else
			pa_elem(&a[7], NULL);
		if (t->has_odometer)
			pa_elemf(&a[8], "%.17g", t->odometer);
		else
			pa_elem(&a[8], NULL);
		if (t->has_record_id)
			pa_elemf(&a[9], "%" PRIu64, t->record_id);
		else
			pa_elem(&a[9], NULL);
	}
	pp_text(&pp, initiator);
	pp_text(&pp, hid);
	pp_text(&pp, rd1->vehicle_id);
	pp_text(&pp, rd1->chip_id);
	pp_u64(&pp, rd1->authed_ms);
	pp_u64(&pp, rd1->next_index);
	pp_array(&pp, &used);
	pp_u64(&pp, now_ms);
	for (k = 0; k < 10; k++)
		pp_array(&pp, &a[k]);
	pp_text(&pp, b->pb_instance);
	pg_sync(b, pg_request(b, rq, P_M8_APPLY, &pp, row_step, done_failed,
	    1));
}

static void
pg_counts(struct tspdb *db, uint64_t now_ms, struct tspdb_counts *c,
    struct tspdb_req *rq)
{
	struct pgb	*b = pb(db);
	struct pgparams	 pp = { 0 };
	struct pgq	*q;

	memset(c, 0, sizeof(*c));
	pp_u64(&pp, now_ms);
	q = pg_request(b, rq, P_COUNTS, &pp, row_counts, done_failed, 0);
	q->q_out[0] = c;
	pg_sync(b, q);
}

/* A JSON view; with sessions the ones in memory overlay their rows. */
static void
pg_view(struct pgb *b, enum pg_stmt i, struct pgparams *pp, json_t **out,
    int sessions, struct tspdb_req *rq)
{
	struct pgq	*q;

	*out = NULL;
	q = pg_request(b, rq, i, pp, row_json, done_failed, 0);
	q->q_out[0] = out;
	q->q_out[1] = sessions ? out : NULL;
	pg_sync(b, q);
}

static void
pg_status_sessions(struct tspdb *db, size_t max, json_t **out,
    struct tspdb_req *rq)
{
	struct pgparams	 pp = { 0 };

	pp_u64(&pp, max);
	pg_view(pb(db), P_STATUS_SESSIONS, &pp, out, 1, rq);
}

static void
pg_status_vehicles(struct tspdb *db, size_t max, json_t **out,
    struct tspdb_req *rq)
{
	struct pgparams	 pp = { 0 };

	pp_u64(&pp, max);
	pg_view(pb(db), P_STATUS_VEHICLES, &pp, out, 0, rq);
}

static void
pg_status_handovers(struct tspdb *db, uint64_t now_ms, size_t max,
    json_t **out, struct tspdb_req *rq)
{
	struct pgparams	 pp = { 0 };

	pp_u64(&pp, now_ms);
	pp_u64(&pp, max);
	pg_view(pb(db), P_STATUS_HANDOVERS, &pp, out, 0, rq);
}

/* ---- what is held in memory ---- */

static int
pg_session_find(struct tspdb *db, const char *vid,
    const struct tspdb_session **sp)
{
	return tspdb_live_find(pb(db)->pb_live, vid, sp);
}

static void
pg_session_release(struct tspdb *db, const char *vid)
{
	tspdb_live_release(pb(db)->pb_live, vid);
}

static size_t
pg_session_live(const struct tspdb *db)
{
	return tspdb_live_count(pb(db)->pb_live);
}

static void
pg_session_contexts(struct tspdb *db, size_t n)
{
	tspdb_live_contexts(pb(db)->pb_live, n);
}

static int
pg_session_stored(struct tspdb *db, const char *vid, uint32_t key_index,
    uint64_t seq)
{
	return tspdb_live_stored(pb(db)->pb_live, vid, key_index, seq);
}

static uint64_t
pg_session_tell(struct tspdb *db, const char *vid)
{
	return tspdb_live_tell(pb(db)->pb_live, vid);
}

static int
pg_session_next_tx(struct tspdb *db, const char *vid, uint64_t *tx_seq,
    const struct tspdb_session **sp)
{
	return tspdb_live_next_tx(pb(db)->pb_live, vid, tx_seq, sp);
}

static void
pg_batch_set_flush(struct tspdb *db, void (*flush)(void *), void *arg)
{
	pb(db)->pb_flush = flush;
	pb(db)->pb_flush_arg = arg;
}

static uint64_t
pg_written(const struct tspdb *db)
{
	return pb(db)->pb_written;
}

static uint64_t
pg_durable(const struct tspdb *db)
{
	return pb(db)->pb_durable_n;
}

const struct tspdb_backend tspdb_postgresql = {
	.be_name = "postgresql",
	.be_shared = 1,
	.be_accepts = pg_accepts,
	.be_open = pg_open,
	.be_close = pg_close,
	.be_fill_apply = pg_fill_apply,
	.be_fill_get = pg_fill_get,
	.be_keypos = pg_keypos,
	.be_m2_apply = pg_m2_apply,
	.be_reg_get = pg_reg_get,
	.be_auth_commit = pg_auth_commit,
	.be_auth_get = pg_auth_get,
	.be_auth_expire = pg_auth_expire,
	.be_key_select = pg_key_select,
	.be_session_open = pg_session_open,
	.be_session_get = pg_session_get,
	.be_session_load = pg_session_load,
	.be_session_telemetry = pg_session_telemetry,
	.be_session_end = pg_session_end,
	.be_telemetry_count = pg_telemetry_count,
	.be_batch_session_open = pg_batch_session_open,
	.be_batch_commit = pg_batch_commit,
	.be_ho_record = pg_ho_record,
	.be_ho_known = pg_ho_known,
	.be_session_seq = pg_session_seq,
	.be_ho_out_done = pg_ho_out_done,
	.be_rd1_load = pg_rd1_load,
	.be_ck2_bind = pg_ck2_bind,
	.be_ck2_get = pg_ck2_get,
	.be_ck2_purge = pg_ck2_purge,
	.be_m8_apply = pg_m8_apply,
	.be_counts = pg_counts,
	.be_status_sessions = pg_status_sessions,
	.be_status_vehicles = pg_status_vehicles,
	.be_status_handovers = pg_status_handovers,
	.be_session_find = pg_session_find,
	.be_session_release = pg_session_release,
	.be_session_live = pg_session_live,
	.be_session_contexts = pg_session_contexts,
	.be_session_stored = pg_session_stored,
	.be_session_tell = pg_session_tell,
	.be_session_next_tx = pg_session_next_tx,
	.be_batch_set_flush = pg_batch_set_flush,
	.be_batch_telemetry = pg_batch_telemetry,
	.be_batch_open = pg_batch_open,
	.be_written = pg_written,
	.be_durable = pg_durable,
};
