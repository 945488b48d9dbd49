/*
 * qprobe: the integration tests' vehicle.  A thin command-line driver over
 * vehicled's chip store, provisioning and message code: every command does
 * one protocol step and prints one final line "RESULT <STATUS> k=v ...".
 * Exit 0 when the command ran (whatever the status), 2 on usage or local
 * errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "conn.h"
#include "crypto.h"
#include "frame.h"
#include "ids.h"
#include "log.h"
#include "msg.h"
#include "rand.h"
#include "store.h"
#include "tls.h"
#include "topo.h"

#include "../../vehicled/chip.h"
#include "../../vehicled/provision.h"
#include "../../vehicled/route.h"
#include "../../vehicled/vmsg.h"

#define PROBE_RAN	0
#define PROBE_LOCAL	2
#define PROBE_MAXFILE	(16 * 1024 * 1024)

struct probe {
	const char		*p_store;
	const char		*p_topofile;
	const char		*p_ca;
	const char		*p_cert;
	const char		*p_key;
	int			 p_wait_ms;
	struct topo		 p_topo;
	sqlite3			*p_db;
	struct event_base	*p_base;
	SSL_CTX			*p_tls;
	struct chip_reg		 p_reg;
	EVP_PKEY		*p_pbv;

	/* Command options. */
	uint32_t		 o_m;
	const char		*o_vin;
	int			 o_rebind;
	const char		*o_tsp;
	const char		*o_vid;
	const char		*o_chip_id;
	const char		*o_as_tsp;
	int64_t			 o_time_offset;
	const char		*o_save;
	enum chip_mode		 o_mode;
	int			 o_has_index;
	uint32_t		 o_index;
	const char		*o_code;
	const char		*o_tamper;
	int			 o_keep_key;
	uint64_t		 o_count;
	int			 o_replay_last;
	int			 o_provision;
	const char		*o_file;
};

/* Print the final RESULT line and return the exit code. */
static int
probe_result(int rc, const char *status, const char *fmt, ...)
{
	va_list	ap;

	printf("RESULT %s", status);
	if (fmt != NULL && fmt[0] != '\0') {
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
	return rc;
}

/* Usage on stderr and a USAGE result. */
static int
probe_usage(const char *why)
{
	fprintf(stderr, "qprobe: %s\n"
	    "usage: qprobe -s CHIPSTORE -t TOPOLOGY [-c CA -C CERT -K KEY]"
	    " [-w TIMEOUT_MS] COMMAND [options]\n"
	    "  fill [-m N]\n"
	    "  register -V VIN [--rebind]\n"
	    "  auth -T TSP [--vid VIN] [--chip-id HEX] [--as-tsp ID]"
	    " [--time-offset MS] [--save FILE]\n"
	    "  m3 -T TSP [--mode seq|arb] [--index N] [--code CODE]"
	    " [--tamper cek|g1] [--keep-key] [--save FILE]\n"
	    "  telemetry -T TSP -n COUNT [--replay-last]\n"
	    "  send -T TSP FILE [--provision]\n", why);
	return probe_result(PROBE_LOCAL, "USAGE", "reason=%s", "bad-arguments");
}

/* Provisioning parameters from the global options. */
static void
probe_vprov(const struct probe *p, struct vprov *vp)
{
	memset(vp, 0, sizeof(*vp));
	vp->vp_topo = &p->p_topo;
	vp->vp_ca = p->p_ca;
	vp->vp_cert = p->p_cert;
	vp->vp_key = p->p_key;
	vp->vp_max_frame = FRAME_MAX_DEFAULT;
	vp->vp_timeout_ms = p->p_wait_ms;
}

/* Load the registration of the chip store (Pbv, vehicle id, chip id). */
static int
probe_load_reg(struct probe *p)
{
	if (chip_reg_load(p->p_db, &p->p_reg) != 1) {
		fprintf(stderr, "qprobe: %s holds no registration\n", p->p_store);
		return -1;
	}
	p->p_pbv = crypto_pub_from_der(p->p_reg.cr_pbv, p->p_reg.cr_pbvlen);
	if (p->p_pbv == NULL) {
		fprintf(stderr, "qprobe: the stored Pbv does not decode\n");
		return -1;
	}
	return 0;
}

/* Connect to a TSP's vehicle (plain) or provisioning (mTLS) endpoint. */
static struct conn *
probe_connect(struct probe *p, const char *tsp_id, int provision)
{
	const struct topo_tsp	*tt;
	const struct endpoint	*ep;
	struct conn_opts	 opts;
	struct conn		*c;
	char			 err[256];

	if ((tt = topo_tsp(&p->p_topo, tsp_id)) == NULL) {
		fprintf(stderr, "qprobe: %s is not in the topology\n", tsp_id);
		return NULL;
	}
	ep = provision ? &tt->tt_provision : &tt->tt_vehicle;
	memset(&opts, 0, sizeof(opts));
	opts.co_max_frame = PROBE_MAXFILE;
	opts.co_connect_ms = p->p_wait_ms;
	if (provision) {
		if (p->p_tls == NULL && (p->p_tls = tls_client_ctx(p->p_ca,
		    p->p_cert, p->p_key)) == NULL) {
			fprintf(stderr, "qprobe: cannot load -c/-C/-K\n");
			return NULL;
		}
		opts.co_tls = p->p_tls;
		opts.co_peer_role = "tsp";
	}
	c = conn_open_sync(p->p_base, ep->ep_host, ep->ep_port, &opts,
	    p->p_wait_ms, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "qprobe: %s\n", err);
	return c;
}

/* Write bytes to path (the --save option). */
static int
probe_save(const char *path, const uint8_t *buf, size_t len)
{
	FILE	*fp;
	int	 rc = 0;

	if ((fp = fopen(path, "wb")) == NULL) {
		fprintf(stderr, "qprobe: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fwrite(buf, 1, len, fp) != len)
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	return rc;
}

/*
 * Encode msg as a frame, save it if asked, send it on a new connection
 * to tsp_id and wait for one reply.  1 with *reply filled, 0 if no reply
 * came, -1 on a local error.
 */
static int
probe_exchange(struct probe *p, uint32_t type, const ProtobufCMessage *msg,
    struct frame *reply)
{
	struct conn	*c;
	uint8_t		*buf;
	size_t		 len;
	int		 rc = 0;

	if (frame_encode(type, 1, msg, PROBE_MAXFILE, &buf, &len) == -1)
		return -1;
	if (p->o_save != NULL && probe_save(p->o_save, buf, len) == -1) {
		free(buf);
		return -1;
	}
	if ((c = probe_connect(p, p->o_tsp, 0)) != NULL) {
		if (conn_send_raw(c, buf, len) == 0 &&
		    conn_recv_sync(c, reply, p->p_wait_ms) == 0)
			rc = 1;
		conn_free_sync(c);
	}
	free(buf);
	return rc;
}

/* fill: F1 through vehicled's provisioning code. */
static int
probe_fill(struct probe *p)
{
	struct vprov		vp;
	struct chip_info	ci;
	int			rc;

	probe_vprov(p, &vp);
	rc = vprov_fill(&vp, p->p_db, p->o_m, &ci);
	if (rc == QROAM__STATUS_CODE__OK)
		return probe_result(PROBE_RAN, "OK", "chip_id=%s m=%u",
		    ci.ci_chip_id, ci.ci_m);
	return probe_result(rc == VPROV_ERROR ? PROBE_LOCAL : PROBE_RAN,
	    vprov_result_name(rc), NULL);
}

/* register: F2, optionally as an operator rebind. */
static int
probe_register(struct probe *p)
{
	struct vprov	vp;
	int		rc;

	if (p->o_vin == NULL || !id_valid_vin(p->o_vin))
		return probe_usage("register needs -V VIN (17 chars)");
	probe_vprov(p, &vp);
	rc = vprov_register(&vp, p->p_db, p->o_vin, p->o_rebind);
	if (rc == QROAM__STATUS_CODE__OK)
		return probe_result(PROBE_RAN, "OK", "vehicle_id=%s", p->o_vin);
	return probe_result(rc == VPROV_ERROR ? PROBE_LOCAL : PROBE_RAN,
	    vprov_result_name(rc), NULL);
}

/* auth: one M4 (with the requested forgeries) and its AuthResult. */
static int
probe_auth(struct probe *p)
{
	Qroam__M4	 m4;
	struct frame	 f;
	uint8_t		 nonce[MSG_AUTH_NONCELEN];
	const char	*vid, *chip, *as;
	int64_t		 now;
	int		 rc, code;

	if (probe_load_reg(p) == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=unregistered");
	vid = p->o_vid ? p->o_vid : p->p_reg.cr_vid;
	chip = p->o_chip_id ? p->o_chip_id : p->p_reg.cr_chip_id;
	as = p->o_as_tsp ? p->o_as_tsp : p->o_tsp;
	now = (int64_t)store_now_ms() + p->o_time_offset;
	if (vmsg_m4(&m4, p->p_pbv, vid, chip, as, now < 0 ? 0 : (uint64_t)now,
	    nonce) == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=m4");
	rc = probe_exchange(p, QROAM__MSG_TYPE__MT_M4, &m4.base, &f);
	vmsg_m4_clear(&m4);
	if (rc == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=send");
	if (rc == 0)
		return probe_result(PROBE_RAN, "NO_REPLY", NULL);
	switch (vmsg_auth_check(&f, p->p_pbv, vid, p->o_tsp, nonce, &code)) {
	case VMSG_AUTH_OK:
		rc = probe_result(PROBE_RAN, "OK", NULL);
		break;
	case VMSG_AUTH_REFUSED:
		rc = probe_result(PROBE_RAN, msg_status_name(code), NULL);
		break;
	case VMSG_AUTH_BAD_SIG:
		rc = probe_result(PROBE_RAN, "BAD_SIGNATURE", NULL);
		break;
	case VMSG_AUTH_OTHER:
		rc = probe_result(PROBE_RAN, "BAD_SIGNATURE", "reason=nonce");
		break;
	default:
		rc = probe_result(PROBE_RAN, "MALFORMED", "type=%s",
		    frame_type_name(f.f_type));
		break;
	}
	frame_release(&f);
	return rc;
}

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
			return probe_result(PROBE_RAN, "MALFORMED", NULL);
		return probe_result(PROBE_RAN, msg_status_name(code),
		    "index=%u code=%s", ck->ck_index, ck->ck_code);
	}
	if (f->f_type != QROAM__MSG_TYPE__MT_SESSION_MSG)
		return probe_result(PROBE_RAN, "MALFORMED", "type=%s",
		    frame_type_name(f->f_type));
	in = vmsg_session_in(f, k1, p->p_reg.cr_vid, p->o_tsp, &rx, &why);
	if (in == NULL) {
		fprintf(stderr, "qprobe: m3 reply: %s\n", why);
		return probe_result(PROBE_RAN, "DECRYPT_FAILED", "where=vehicle");
	}
	ok = in->body_case == QROAM__SESSION_INNER__BODY_RESPONSE &&
	    in->response->ack_seq == 0;
	qroam__session_inner__free_unpacked(in, NULL);
	if (!ok)
		return probe_result(PROBE_RAN, "MALFORMED", "reason=reply");
	if (probe_session_save(p, k1, rx) == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=store");
	return probe_result(PROBE_RAN, "OK", "index=%u code=%s", ck->ck_index,
	    ck->ck_code);
}

/* m3: draw (and unless --keep-key destroy) a key, send M3, read the reply. */
static int
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
		return probe_result(PROBE_LOCAL, "ERROR", "reason=unregistered");
	switch (probe_pick_key(p, &ck)) {
	case CHIP_DRAW_OK:
		break;
	case CHIP_DRAW_DESTROYED:
		return probe_result(PROBE_RAN, "KEY_REUSED",
		    "index=%u code=%s where=chip", ck.ck_index, ck.ck_code);
	case CHIP_DRAW_NONE:
		if (p->o_has_index || p->o_code != NULL)
			return probe_result(PROBE_LOCAL, "ERROR",
			    "reason=no-such-key");
		return probe_result(PROBE_RAN, "KEY_EXHAUSTED", NULL);
	default:
		return probe_result(PROBE_LOCAL, "ERROR", "reason=store");
	}
	if (!p->o_keep_key && chip_destroy_key(p->p_db, ck.ck_index) == -1) {
		chip_key_wipe(&ck);
		return probe_result(PROBE_LOCAL, "ERROR", "reason=destroy");
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
		rc = probe_result(PROBE_LOCAL, "ERROR", "reason=m3");
	else if (rc == 0)
		rc = probe_result(PROBE_RAN, "NO_REPLY", "index=%u code=%s",
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

/*
 * Read replies until every seq in (first, last] was acknowledged or the
 * wait ran out.  Returns the acks counted; *status gets the last Status.
 */
static uint64_t
probe_collect_acks(struct probe *p, struct conn *c, const uint8_t k1[32],
    uint64_t first, uint64_t last, uint64_t *rx, int *status)
{
	Qroam__SessionInner	*in;
	struct frame		 f;
	const char		*why;
	uint64_t		 acked = 0, high = first, deadline;
	int64_t			 left;

	deadline = store_now_ms() + (uint64_t)p->p_wait_ms;
	while (high < last) {
		if ((left = (int64_t)(deadline - store_now_ms())) <= 0 ||
		    conn_recv_sync(c, &f, (int)left) == -1)
			break;
		if (f.f_type == QROAM__MSG_TYPE__MT_STATUS) {
			if (vmsg_status(&f, status) == -1)
				*status = QROAM__STATUS_CODE__BAD_REQUEST;
		} else if (f.f_type == QROAM__MSG_TYPE__MT_SESSION_MSG &&
		    (in = vmsg_session_in(&f, k1, p->p_reg.cr_vid, p->o_tsp,
		    rx, &why)) != NULL) {
			if (in->body_case == QROAM__SESSION_INNER__BODY_RESPONSE &&
			    in->response->ack_seq > high &&
			    in->response->ack_seq <= last) {
				high = in->response->ack_seq;
				acked++;
			}
			qroam__session_inner__free_unpacked(in, NULL);
		} else
			fprintf(stderr, "qprobe: unusable %s reply\n",
			    frame_type_name(f.f_type));
		frame_release(&f);
	}
	return acked;
}

/* Send COUNT telemetry messages pipelined, then the optional replay. */
static int
probe_telemetry_run(struct probe *p, struct conn *c, const uint8_t k1[32],
    uint64_t *tx, uint64_t *rx)
{
	uint8_t		*buf = NULL;
	size_t		 len = 0;
	uint64_t	 i, first = *tx, acked, replay_acked = 0;
	int		 status = -1, rstatus = -1;

	for (i = 1; i <= p->o_count; i++) {
		free(buf);
		if (probe_telemetry_frame(p, k1, first + i, &buf, &len) == -1 ||
		    conn_send_raw(c, buf, len) == -1) {
			free(buf);
			return probe_result(PROBE_LOCAL, "ERROR", "reason=send");
		}
	}
	*tx = first + p->o_count;
	acked = probe_collect_acks(p, c, k1, first, *tx, rx, &status);
	if (p->o_replay_last && buf != NULL) {
		if (conn_send_raw(c, buf, len) == 0)
			replay_acked = probe_collect_acks(p, c, k1, *tx - 1, *tx,
			    rx, &rstatus);
	}
	free(buf);
	if (status != -1 && acked < p->o_count)
		return probe_result(PROBE_RAN, msg_status_name(status),
		    "sent=%" PRIu64 " acked=%" PRIu64, p->o_count, acked);
	return probe_result(PROBE_RAN, "OK", "sent=%" PRIu64 " acked=%" PRIu64
	    "%s", p->o_count, acked, !p->o_replay_last ? "" : replay_acked ?
	    " replay=accepted" : " replay=refused");
}

/* telemetry: COUNT messages on the stored session. */
static int
probe_telemetry(struct probe *p)
{
	struct conn	*c;
	uint8_t		 k1[32];
	uint64_t	 tx, rx;
	int		 rc;

	if (p->o_count == 0)
		return probe_usage("telemetry needs -n COUNT >= 1");
	if (probe_load_reg(p) == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=unregistered");
	if (probe_session_load(p, k1, &tx, &rx) == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=no-session");
	if ((c = probe_connect(p, p->o_tsp, 0)) == NULL) {
		crypto_wipe(k1, sizeof(k1));
		return probe_result(PROBE_RAN, "NO_REPLY", "reason=connect");
	}
	rc = probe_telemetry_run(p, c, k1, &tx, &rx);
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
static int
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
		return probe_result(PROBE_LOCAL, "ERROR", "reason=file");
	if ((c = probe_connect(p, p->o_tsp, p->o_provision)) == NULL) {
		free(buf);
		return probe_result(PROBE_RAN, "NO_REPLY", "reason=connect");
	}
	rc = conn_send_raw(c, buf, len) == 0 &&
	    conn_recv_sync(c, &f, p->p_wait_ms) == 0;
	conn_free_sync(c);
	free(buf);
	if (!rc)
		return probe_result(PROBE_RAN, "NO_REPLY", NULL);
	if (vmsg_status(&f, &code) == 0)
		rc = probe_result(PROBE_RAN, msg_status_name(code), NULL);
	else if (f.f_type == QROAM__MSG_TYPE__MT_AUTH_RESULT) {
		Qroam__AuthResult *ar = (Qroam__AuthResult *)frame_unpack(&f,
		    &qroam__auth_result__descriptor);

		rc = probe_result(PROBE_RAN, ar ? msg_status_name(ar->code) :
		    "MALFORMED", "type=MT_AUTH_RESULT");
		if (ar != NULL)
			qroam__auth_result__free_unpacked(ar, NULL);
	} else
		rc = probe_result(PROBE_RAN, "OK", "type=%s",
		    frame_type_name(f.f_type));
	frame_release(&f);
	return rc;
}

/* A number option in [min, max]; -1 on a bad value. */
static int
probe_number(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum {
	OPT_REBIND = 256, OPT_VID, OPT_CHIP_ID, OPT_AS_TSP, OPT_TIME_OFFSET,
	OPT_SAVE, OPT_MODE, OPT_INDEX, OPT_CODE, OPT_TAMPER, OPT_KEEP_KEY,
	OPT_REPLAY_LAST, OPT_PROVISION,
};

static const struct option probe_longopts[] = {
	{ "rebind", no_argument, NULL, OPT_REBIND },
	{ "vid", required_argument, NULL, OPT_VID },
	{ "chip-id", required_argument, NULL, OPT_CHIP_ID },
	{ "as-tsp", required_argument, NULL, OPT_AS_TSP },
	{ "time-offset", required_argument, NULL, OPT_TIME_OFFSET },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "index", required_argument, NULL, OPT_INDEX },
	{ "code", required_argument, NULL, OPT_CODE },
	{ "tamper", required_argument, NULL, OPT_TAMPER },
	{ "keep-key", no_argument, NULL, OPT_KEEP_KEY },
	{ "replay-last", no_argument, NULL, OPT_REPLAY_LAST },
	{ "provision", no_argument, NULL, OPT_PROVISION },
	{ NULL, 0, NULL, 0 },
};

/* One command option; -1 on a bad value. */
static int
probe_option(struct probe *p, int ch, const char *arg)
{
	int64_t	v;

	switch (ch) {
	case 'm':
		if (probe_number(arg, 1, UINT32_MAX, &v) == -1)
			return -1;
		p->o_m = (uint32_t)v;
		return 0;
	case 'n':
		if (probe_number(arg, 1, 10000000, &v) == -1)
			return -1;
		p->o_count = (uint64_t)v;
		return 0;
	case OPT_TIME_OFFSET:
		return probe_number(arg, -(INT64_C(1) << 50), INT64_C(1) << 50,
		    &p->o_time_offset);
	case OPT_INDEX:
		if (probe_number(arg, 0, UINT32_MAX, &v) == -1)
			return -1;
		p->o_has_index = 1;
		p->o_index = (uint32_t)v;
		return 0;
	case OPT_MODE:
		if (strcmp(arg, "seq") == 0 || strcmp(arg, "sequential") == 0)
			p->o_mode = CHIP_SEQUENTIAL;
		else if (strcmp(arg, "arb") == 0 || strcmp(arg, "arbitrary") == 0)
			p->o_mode = CHIP_ARBITRARY;
		else
			return -1;
		return 0;
	case OPT_TAMPER:
		if (strcmp(arg, "cek") != 0 && strcmp(arg, "g1") != 0)
			return -1;
		p->o_tamper = arg;
		return 0;
	}
	return -1;
}

/* Parse the options after COMMAND; -1 on a usage error. */
static int
probe_command_opts(struct probe *p, int argc, char **argv)
{
	int	ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "m:n:T:V:", probe_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'T':
			p->o_tsp = optarg;
			break;
		case 'V':
			p->o_vin = optarg;
			break;
		case OPT_REBIND:
			p->o_rebind = 1;
			break;
		case OPT_VID:
			p->o_vid = optarg;
			break;
		case OPT_CHIP_ID:
			p->o_chip_id = optarg;
			break;
		case OPT_AS_TSP:
			p->o_as_tsp = optarg;
			break;
		case OPT_SAVE:
			p->o_save = optarg;
			break;
		case OPT_CODE:
			p->o_code = optarg;
			break;
		case OPT_KEEP_KEY:
			p->o_keep_key = 1;
			break;
		case OPT_REPLAY_LAST:
			p->o_replay_last = 1;
			break;
		case OPT_PROVISION:
			p->o_provision = 1;
			break;
		case '?':
			return -1;
		default:
			if (probe_option(p, ch, optarg) == -1) {
				fprintf(stderr, "qprobe: bad value \"%s\"\n",
				    optarg);
				return -1;
			}
			break;
		}
	}
	if (optind < argc)
		p->o_file = argv[optind++];
	return optind == argc ? 0 : -1;
}

/* Run one command on an opened probe. */
static int
probe_run(struct probe *p, const char *cmd)
{
	if (strcmp(cmd, "fill") == 0)
		return probe_fill(p);
	if (strcmp(cmd, "register") == 0)
		return probe_register(p);
	if (p->o_tsp == NULL || topo_tsp(&p->p_topo, p->o_tsp) == NULL)
		return probe_usage("-T must name a TSP of the topology");
	if (strcmp(cmd, "auth") == 0)
		return probe_auth(p);
	if (strcmp(cmd, "m3") == 0)
		return probe_m3(p);
	if (strcmp(cmd, "telemetry") == 0)
		return probe_telemetry(p);
	if (strcmp(cmd, "send") == 0)
		return probe_send(p);
	return probe_usage("unknown command");
}

int
main(int argc, char *argv[])
{
	struct probe	 p;
	const char	*cmd;
	int64_t		 v;
	int		 ch, rc;

	memset(&p, 0, sizeof(p));
	p.p_wait_ms = 3000;
	log_init("qprobe", 0);
	while ((ch = getopt(argc, argv, "+c:C:K:s:t:vw:")) != -1) {
		switch (ch) {
		case 'c':
			p.p_ca = optarg;
			break;
		case 'C':
			p.p_cert = optarg;
			break;
		case 'K':
			p.p_key = optarg;
			break;
		case 's':
			p.p_store = optarg;
			break;
		case 't':
			p.p_topofile = optarg;
			break;
		case 'v':
			log_setverbose(1);
			break;
		case 'w':
			if (probe_number(optarg, 1, 3600000, &v) == -1)
				return probe_usage("bad -w TIMEOUT_MS");
			p.p_wait_ms = (int)v;
			break;
		default:
			return probe_usage("bad option");
		}
	}
	if (p.p_store == NULL || p.p_topofile == NULL || optind >= argc)
		return probe_usage("-s, -t and a COMMAND are required");
	cmd = argv[optind];
	if (probe_command_opts(&p, argc - optind, argv + optind) == -1)
		return probe_usage("bad command options");
	if (topo_load(p.p_topofile, &p.p_topo) == -1)
		return probe_result(PROBE_LOCAL, "ERROR", "reason=topology");
	if ((p.p_db = chip_open(p.p_store)) == NULL) {
		topo_free(&p.p_topo);
		return probe_result(PROBE_LOCAL, "ERROR", "reason=store");
	}
	if ((p.p_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	rc = probe_run(&p, cmd);
	EVP_PKEY_free(p.p_pbv);
	chip_reg_clear(&p.p_reg);
	if (p.p_tls != NULL)
		SSL_CTX_free(p.p_tls);
	/* Let deferred bufferevent callbacks drop their references. */
	event_base_loop(p.p_base, EVLOOP_NONBLOCK);
	event_base_free(p.p_base);
	chip_close(p.p_db);
	topo_free(&p.p_topo);
	return rc;
}
