/*
 * qprobe's session commands: M3 (F4) with its forgeries, pipelined
 * telemetry (F5) on the stored session with the handover messages a TSP
 * sends on it (M5 answered with M6, HandoverReady), and raw frames.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "msg.h"
#include "rand.h"
#include "store.h"

#include "route.h"
#include "vmsg.h"

#include "probe.h"

/* Select the key of an m3 command; CHIP_DRAW_OK with *ck filled. */
static enum chip_draw
probe_pick_key(struct probe *p, struct chip_key *ck)
{
	if (p->o_has_index)
		return chip_draw_index(p->p_db, p->o_index, ck);
	if (p->o_code != NULL)
		return chip_draw_code(p->p_db, p->o_code, ck);
	return chip_draw(p->p_db, p->o_mode, ck);
}

/* Keep the session of an accepted M3 for the telemetry command. */
static int
probe_session_save(struct probe *p, const uint8_t k1[32], uint64_t rx_seq)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (store_exec(p->p_db, "CREATE TABLE IF NOT EXISTS probe_session("
	    "id INTEGER PRIMARY KEY CHECK(id=1), tsp_id TEXT, k1 BLOB,"
	    " tx_seq INT, rx_seq INT)") == -1)
		return -1;
	st = store_prepare(p->p_db, "INSERT OR REPLACE INTO probe_session(id,"
	    " tsp_id, k1, tx_seq, rx_seq) VALUES(1, ?, ?, 0, ?)");
	sqlite3_bind_text(st, 1, p->o_tsp, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, k1, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rx_seq);
	rc = store_step_done(st, NULL);
	sqlite3_finalize(st);
	return rc;
}

/* Flip one bit of the wrapped key or of the data, for --tamper. */
static int
probe_tamper(const char *what, Qroam__M3 *m3)
{
	ProtobufCBinaryData	*b;

	if (what == NULL)
		return 0;
	if (strcmp(what, "cek") == 0)
		b = &m3->cek1;
	else if (strcmp(what, "g1") == 0)
		b = &m3->g1;
	else
		return -1;
	if (b->len == 0)
		return -1;
	b->data[b->len / 2] ^= 0x01;
	return 0;
}

/* Interpret the reply to an M3 and print the result line. */
static int
probe_m3_reply(struct probe *p, const struct frame *f, const uint8_t k1[32],
    const struct chip_key *ck)
{
	Qroam__SessionInner	*in;
	const char		*why = "?";
	uint64_t		 rx = 0;
	int			 code, ok;

	if (f->f_type == QROAM__MSG_TYPE__MT_STATUS) {
		if (vmsg_status(f, &code) == -1)
			return result_print(PROBE_RAN, "MALFORMED", NULL);
		return result_print(PROBE_RAN, msg_status_name(code),
		    "index=%u code=%s", ck->ck_index, ck->ck_code);
	}
	if (f->f_type != QROAM__MSG_TYPE__MT_SESSION_MSG)
		return result_print(PROBE_RAN, "MALFORMED", "type=%s",
		    frame_type_name(f->f_type));
	in = vmsg_session_in(f, k1, p->p_reg.cr_vid, p->o_tsp, &rx, &why);
	if (in == NULL) {
		fprintf(stderr, "qprobe: m3 reply: %s\n", why);
		return result_print(PROBE_RAN, "DECRYPT_FAILED", "where=vehicle");
	}
	ok = in->body_case == QROAM__SESSION_INNER__BODY_RESPONSE &&
	    in->response->ack_seq == 0;
	qroam__session_inner__free_unpacked(in, NULL);
	if (!ok)
		return result_print(PROBE_RAN, "MALFORMED", "reason=reply");
	if (probe_session_save(p, k1, rx) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=store");
	return result_print(PROBE_RAN, "OK", "index=%u code=%s", ck->ck_index,
	    ck->ck_code);
}

/* m3: draw (and unless --keep-key destroy) a key, send M3, read the reply. */
int
probe_m3(struct probe *p)
{
	const struct topo_tsp	*tt;
	Qroam__M3		 m3;
	Qroam__Telemetry	 d1;
	struct route_pos	 rp;
	struct chip_key		 ck;
	struct frame		 f;
	uint8_t			 k1[32];
	int			 rc;

	if (probe_load_reg(p) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=unregistered");
	switch (probe_pick_key(p, &ck)) {
	case CHIP_DRAW_OK:
		break;
	case CHIP_DRAW_DESTROYED:
		return result_print(PROBE_RAN, "KEY_REUSED",
		    "index=%u code=%s where=chip", ck.ck_index, ck.ck_code);
	case CHIP_DRAW_NONE:
		if (p->o_has_index || p->o_code != NULL)
			return result_print(PROBE_LOCAL, "ERROR",
			    "reason=no-such-key");
		return result_print(PROBE_RAN, "KEY_EXHAUSTED", NULL);
	default:
		return result_print(PROBE_LOCAL, "ERROR", "reason=store");
	}
	if (!p->o_keep_key && chip_destroy_key(p->p_db, ck.ck_index) == -1) {
		chip_key_wipe(&ck);
		return result_print(PROBE_LOCAL, "ERROR", "reason=destroy");
	}
	memset(&rp, 0, sizeof(rp));
	if ((tt = topo_tsp(&p->p_topo, p->o_tsp)) != NULL)
		route_region_centre(tt, &rp.rp_point);
	vmsg_telemetry(&d1, &rp, store_now_ms());
	qrand_bytes(k1, sizeof(k1));
	rc = vmsg_m3(&m3, p->p_reg.cr_vid, p->o_tsp, &ck, p->o_mode, k1, &d1);
	crypto_wipe(ck.ck_key, sizeof(ck.ck_key));
	if (rc == 0 && probe_tamper(p->o_tamper, &m3) == -1)
		rc = -1;
	if (rc == 0)
		rc = probe_exchange(p, QROAM__MSG_TYPE__MT_M3, &m3.base, &f);
	else
		rc = -1;
	msg_m3_clear(&m3);
	if (rc == -1)
		rc = result_print(PROBE_LOCAL, "ERROR", "reason=m3");
	else if (rc == 0)
		rc = result_print(PROBE_RAN, "NO_REPLY", "index=%u code=%s",
		    ck.ck_index, ck.ck_code);
	else {
		rc = probe_m3_reply(p, &f, k1, &ck);
		frame_release(&f);
	}
	crypto_wipe(k1, sizeof(k1));
	return rc;
}

/* The session of the last accepted M3: K1 and both sequence numbers. */
static int
probe_session_load(struct probe *p, uint8_t k1[32], uint64_t *tx,
    uint64_t *rx)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	if (sqlite3_prepare_v2(p->p_db, "SELECT k1, tx_seq, rx_seq FROM"
	    " probe_session WHERE id = 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == 32) {
		memcpy(k1, sqlite3_column_blob(st, 0), 32);
		*tx = (uint64_t)sqlite3_column_int64(st, 1);
		*rx = (uint64_t)sqlite3_column_int64(st, 2);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Store the sequence numbers reached by a telemetry run. */
static int
probe_session_update(struct probe *p, uint64_t tx, uint64_t rx)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = store_prepare(p->p_db, "UPDATE probe_session SET tx_seq = ?,"
	    " rx_seq = ? WHERE id = 1");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)tx);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)rx);
	rc = store_step_done(st, NULL);
	sqlite3_finalize(st);
	return rc;
}

/* One telemetry run on a connection: the session and what came back. */
struct probe_run {
	struct probe	*r_p;
	struct conn	*r_c;
	const uint8_t	*r_k1;
	uint64_t	*r_tx;
	uint64_t	*r_rx;
	char		 r_m5[512];	/* candidates of M5, "" if none came */
	int		 r_m6;		/* 0 not sent, 1 continue, 2 declined */
	char		 r_ready[33];	/* the TSP of HandoverReady */
	char		 r_ready_addr[300];
	uint64_t	 r_stored;	/* the highest stored_seq seen */
};

/* Encode the telemetry SessionMsg seq as a frame. */
static int
probe_telemetry_frame(struct probe *p, const uint8_t k1[32], uint64_t seq,
    uint8_t **buf, size_t *len)
{
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT;
	Qroam__SessionMsg	 sm;
	Qroam__Telemetry	 t;
	struct route_pos	 rp;
	int			 rc;

	memset(&rp, 0, sizeof(rp));
	if (p->o_has_at) {
		rp.rp_point.gp_lat = p->o_lat;
		rp.rp_point.gp_lon = p->o_lon;
		rp.rp_heading = p->o_heading;
		rp.rp_speed = p->o_speed;
	}
	vmsg_telemetry(&t, &rp, store_now_ms());
	in.body_case = QROAM__SESSION_INNER__BODY_TELEMETRY;
	in.telemetry = &t;
	if (vmsg_session_out(&sm, k1, p->p_reg.cr_vid, p->o_tsp, seq, &in) == -1)
		return -1;
	rc = frame_encode(QROAM__MSG_TYPE__MT_SESSION_MSG, seq, &sm.base,
	    PROBE_MAXFILE, buf, len);
	free(sm.ct.data);
	return rc;
}

/* M5 came: note its candidates and answer it as --m6 says. */
static void
probe_m5(struct probe_run *r, const Qroam__M5 *m5)
{
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT;
	Qroam__SessionMsg	 sm;
	Qroam__M6		 m6 = QROAM__M6__INIT;
	struct probe		*p = r->r_p;
	size_t			 i, off = 0;

	for (i = 0; i < m5->n_candidates && off < sizeof(r->r_m5); i++)
		off += (size_t)snprintf(r->r_m5 + off, sizeof(r->r_m5) - off,
		    "%s%s", i ? "," : "", m5->candidates[i]->tsp_id);
	if (m5->n_candidates == 0)
		snprintf(r->r_m5, sizeof(r->r_m5), "-");
	if (p->o_m6 == NULL || r->r_m6 != 0)
		return;
	m6.continue_service = strcmp(p->o_m6, "decline") != 0;
	if (m6.continue_service)
		m6.next_tsp_id = (char *)p->o_m6;
	in.body_case = QROAM__SESSION_INNER__BODY_M6;
	in.m6 = &m6;
	if (vmsg_session_out(&sm, r->r_k1, p->p_reg.cr_vid, p->o_tsp,
	    *r->r_tx + 1, &in) == -1)
		return;
	if (conn_send(r->r_c, QROAM__MSG_TYPE__MT_SESSION_MSG, *r->r_tx + 1,
	    &sm.base) == 0) {
		(*r->r_tx)++;
		r->r_m6 = m6.continue_service ? 1 : 2;
	}
	free(sm.ct.data);
}

/*
 * 1 while the run waits: for acks, or for M5 and HandoverReady (--m6),
 * or for HandoverReady (--await-ready).
 */
static int
probe_waiting(const struct probe_run *r, uint64_t high, uint64_t last)
{
	if (high < last)
		return 1;
	if (r->r_p->o_await_ready)
		return r->r_ready[0] == '\0';
	if (r->r_p->o_m6 == NULL)
		return 0;
	if (r->r_m5[0] == '\0')
		return 1;
	return r->r_m6 == 1 && r->r_ready[0] == '\0';
}

/* One SessionInner from the TSP; acks of (first, last] raise *high. */
static void
probe_inner(struct probe_run *r, const Qroam__SessionInner *in,
    uint64_t last, uint64_t *high, uint64_t *acked)
{
	const Qroam__HandoverReady	*hr;

	switch (in->body_case) {
	case QROAM__SESSION_INNER__BODY_RESPONSE:
		if (in->response->has_stored_seq &&
		    in->response->stored_seq > r->r_stored)
			r->r_stored = in->response->stored_seq;
		if (in->response->ack_seq > *high &&
		    in->response->ack_seq <= last) {
			*high = in->response->ack_seq;
			(*acked)++;
		}
		break;
	case QROAM__SESSION_INNER__BODY_M5:
		probe_m5(r, in->m5);
		break;
	case QROAM__SESSION_INNER__BODY_READY:
		hr = in->ready;
		snprintf(r->r_ready, sizeof(r->r_ready), "%s", hr->tsp_id);
		snprintf(r->r_ready_addr, sizeof(r->r_ready_addr), "%s:%u",
		    hr->host, hr->port);
		break;
	default:
		fprintf(stderr, "qprobe: session message %d ignored\n",
		    (int)in->body_case);
		break;
	}
}

/*
 * Read replies until every seq in (first, last] was acknowledged (and,
 * with --m6, M5 was answered and HandoverReady came) or the wait ran out.
 * Returns the acks counted; *status gets the last Status.
 */
static uint64_t
probe_collect_acks(struct probe_run *r, uint64_t first, uint64_t last,
    int *status)
{
	Qroam__SessionInner	*in;
	struct probe		*p = r->r_p;
	struct frame		 f;
	const char		*why;
	uint64_t		 acked = 0, high = first, deadline;
	int64_t			 left;

	deadline = store_now_ms() + (uint64_t)p->p_wait_ms;
	while (probe_waiting(r, high, last)) {
		if ((left = (int64_t)(deadline - store_now_ms())) <= 0 ||
		    conn_recv_sync(r->r_c, &f, (int)left) == -1)
			break;
		if (f.f_type == QROAM__MSG_TYPE__MT_STATUS) {
			if (vmsg_status(&f, status) == -1)
				*status = QROAM__STATUS_CODE__BAD_REQUEST;
		} else if (f.f_type == QROAM__MSG_TYPE__MT_SESSION_MSG &&
		    (in = vmsg_session_in(&f, r->r_k1, p->p_reg.cr_vid,
		    p->o_tsp, r->r_rx, &why)) != NULL) {
			probe_inner(r, in, last, &high, &acked);
			qroam__session_inner__free_unpacked(in, NULL);
		} else
			fprintf(stderr, "qprobe: unusable %s reply: %s\n",
			    frame_type_name(f.f_type),
			    f.f_type == QROAM__MSG_TYPE__MT_SESSION_MSG ? why :
			    "unexpected type");
		frame_release(&f);
	}
	return acked;
}

/* The handover part of the RESULT line. */
static void
probe_handover_kv(const struct probe_run *r, char *buf, size_t len)
{
	int	n = 0;

	buf[0] = '\0';
	if (r->r_m5[0] != '\0')
		n = snprintf(buf, len, " m5=%s", r->r_m5);
	if (r->r_m6 != 0 && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, " m6=%s", r->r_m6 == 1 ?
		    r->r_p->o_m6 : "decline");
	if ((r->r_m6 == 1 || r->r_p->o_await_ready) && n >= 0 &&
	    (size_t)n < len)
		snprintf(buf + n, len - n, " ready=%s%s%s", r->r_ready[0] ?
		    r->r_ready : "none", r->r_ready[0] ? " ready_addr=" : "",
		    r->r_ready_addr);
}

/* Send COUNT telemetry messages pipelined, then the optional replay. */
static int
probe_telemetry_run(struct probe_run *r)
{
	struct probe	*p = r->r_p;
	uint8_t		*buf = NULL;
	size_t		 len = 0;
	uint64_t	 i, first = *r->r_tx, last, acked, replay_acked = 0;
	uint64_t	 stored;
	int		 status = -1, rstatus = -1;
	char		 ho[700];

	for (i = 1; i <= p->o_count; i++) {
		free(buf);
		if (probe_telemetry_frame(p, r->r_k1, first + i, &buf,
		    &len) == -1 || conn_send_raw(r->r_c, buf, len) == -1) {
			free(buf);
			return result_print(PROBE_LOCAL, "ERROR", "reason=send");
		}
	}
	*r->r_tx = last = first + p->o_count;
	acked = probe_collect_acks(r, first, last, &status);
	if (p->o_replay_last && buf != NULL) {
		if (conn_send_raw(r->r_c, buf, len) == 0)
			replay_acked = probe_collect_acks(r, last - 1, last,
			    &rstatus);
	}
	free(buf);
	probe_handover_kv(r, ho, sizeof(ho));
	/* Records of this run that a stored_seq covered. */
	stored = r->r_stored > first ? r->r_stored - first : 0;
	if (status != -1 && acked < p->o_count)
		return result_print(PROBE_RAN, msg_status_name(status),
		    "sent=%" PRIu64 " acked=%" PRIu64 " stored=%" PRIu64 "%s",
		    p->o_count, acked, stored, ho);
	return result_print(PROBE_RAN, "OK", "sent=%" PRIu64 " acked=%" PRIu64
	    " stored=%" PRIu64 "%s%s", p->o_count, acked, stored,
	    !p->o_replay_last ? "" : replay_acked ? " replay=accepted" :
	    " replay=refused", ho);
}

/* telemetry: COUNT messages on the stored session. */
int
probe_telemetry(struct probe *p)
{
	struct probe_run r;
	struct conn	*c;
	uint8_t		 k1[32];
	uint64_t	 tx, rx;
	int		 rc;

	if (p->o_count == 0)
		return probe_usage("telemetry needs -n COUNT >= 1");
	if (probe_load_reg(p) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=unregistered");
	if (probe_session_load(p, k1, &tx, &rx) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=no-session");
	if ((c = probe_connect(p, p->o_tsp, 0)) == NULL) {
		crypto_wipe(k1, sizeof(k1));
		return result_print(PROBE_RAN, "NO_REPLY", "reason=connect");
	}
	memset(&r, 0, sizeof(r));
	r.r_p = p;
	r.r_c = c;
	r.r_k1 = k1;
	r.r_tx = &tx;
	r.r_rx = &rx;
	rc = probe_telemetry_run(&r);
	conn_free_sync(c);
	crypto_wipe(k1, sizeof(k1));
	if (probe_session_update(p, tx, rx) == -1 && rc == PROBE_RAN)
		fprintf(stderr, "qprobe: cannot store the session counters\n");
	return rc;
}

/* Read a whole file of at most PROBE_MAXFILE bytes; malloc'd. */
static uint8_t *
probe_read_file(const char *path, size_t *len)
{
	FILE	*fp;
	uint8_t	*buf;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "qprobe: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(PROBE_MAXFILE)) != NULL) {
		*len = fread(buf, 1, PROBE_MAXFILE, fp);
		if (ferror(fp) || *len == 0) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(fp);
	return buf;
}

/* send: raw bytes from FILE, and the status of the reply. */
int
probe_send(struct probe *p)
{
	struct conn	*c;
	struct frame	 f;
	uint8_t		*buf;
	size_t		 len;
	int		 rc, code;

	if (p->o_file == NULL)
		return probe_usage("send needs a FILE");
	if ((buf = probe_read_file(p->o_file, &len)) == NULL)
		return result_print(PROBE_LOCAL, "ERROR", "reason=file");
	if ((c = probe_connect(p, p->o_tsp, p->o_provision)) == NULL) {
		free(buf);
		return result_print(PROBE_RAN, "NO_REPLY", "reason=connect");
	}
	rc = conn_send_raw(c, buf, len) == 0 &&
	    conn_recv_sync(c, &f, p->p_wait_ms) == 0;
	conn_free_sync(c);
	free(buf);
	if (!rc)
		return result_print(PROBE_RAN, "NO_REPLY", NULL);
	if (vmsg_status(&f, &code) == 0)
		rc = result_print(PROBE_RAN, msg_status_name(code), NULL);
	else if (f.f_type == QROAM__MSG_TYPE__MT_AUTH_RESULT) {
		Qroam__AuthResult *ar = (Qroam__AuthResult *)frame_unpack(&f,
		    &qroam__auth_result__descriptor);

		rc = result_print(PROBE_RAN, ar ? msg_status_name(ar->code) :
		    "MALFORMED", "type=MT_AUTH_RESULT");
		if (ar != NULL)
			qroam__auth_result__free_unpacked(ar, NULL);
	} else
		rc = result_print(PROBE_RAN, "OK", "type=%s",
		    frame_type_name(f.f_type));
	frame_release(&f);
	return rc;
}
