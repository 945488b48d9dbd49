/*
 * F1 on the filler side: a factory asks over the authenticated channel,
 * the filler draws and orders the keys, stores the fill record and queues
 * it for every TSP in one transaction, then answers the factory.  With a
 * key management platform in the topology (PROTOCOL 11.1), the chip also
 * gets an initial key IK_v, in the reply alone, and the same transaction
 * queues it with the chip_id for kmpd, never for a TSP.
 */
#include <stdlib.h>

#include "conn.h"
#include "crypto.h"
#include "fill.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "outbox.h"
#include "outboxd.h"
#include "rand.h"
#include "server.h"
#include "store.h"

struct filler {
	const struct fillerd_conf *f_conf;
	sqlite3			*f_db;
	struct outbox		*f_ob;
	sqlite3_stmt		*f_ins_fill;
	sqlite3_stmt		*f_ins_key;
	struct metric		*f_fills;
	int			 f_kmp;	/* the topology has a KMP: IK_v for it */
};

#define FILLER_KMP_DEST	"kmp"	/* the outbox destination of kmpd */

static const char *const filler_schema[] = {
	"CREATE TABLE fills ("
	" chip_id TEXT PRIMARY KEY,"
	" m INTEGER NOT NULL, k INTEGER NOT NULL, n INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" requested_by TEXT NOT NULL);"
	"CREATE TABLE fill_keys ("
	" chip_id TEXT NOT NULL REFERENCES fills(chip_id),"
	" idx INTEGER NOT NULL, code TEXT NOT NULL, key BLOB NOT NULL,"
	" PRIMARY KEY (chip_id, idx), UNIQUE (chip_id, code));",
	outbox_schema,
};

/*
 * Queue the chip's identity and IK_v for the key management platform alone
 * (KmpIdentity), inside filler_store's transaction.  0 or -1.
 */
static int
filler_queue_ik(struct filler *f, const char *chip_id, const uint8_t ik[32])
{
	Qroam__KmpIdentity	 m = QROAM__KMP_IDENTITY__INIT;
	uint8_t			*buf;
	size_t			 len;
	int			 rc;

	m.identity = (char *)chip_id;
	m.kind = "vehicle";
	m.ik.data = (uint8_t *)ik;
	m.ik.len = 32;
	len = qroam__kmp_identity__get_packed_size(&m);
	if ((buf = malloc(len)) == NULL)
		return -1;
	qroam__kmp_identity__pack(&m, buf);
	rc = outbox_enqueue(f->f_ob, FILLER_KMP_DEST,
	    QROAM__MSG_TYPE__MT_KMP_IDENTITY, buf, len);
	crypto_wipe(buf, len);
	free(buf);
	return rc;
}

/*
 * Store rec and queue it for every TSP, and ik (if not NULL) for the KMP,
 * atomically.  0 or -1.
 */
static int
filler_store(struct filler *f, const Qroam__FillRecord *rec, const char *who,
    const uint8_t *ik)
{
	uint8_t		*buf;
	size_t		 len, i;
	int		 rc = -1;

	len = qroam__fill_record__get_packed_size(rec);
	if ((buf = malloc(len)) == NULL)
		return -1;
	qroam__fill_record__pack(rec, buf);
	if (store_begin(f->f_db) == -1)
		goto out;
	sqlite3_bind_text(f->f_ins_fill, 1, rec->chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(f->f_ins_fill, 2, (int)rec->m);
	sqlite3_bind_int(f->f_ins_fill, 3, (int)rec->k);
	sqlite3_bind_int(f->f_ins_fill, 4, (int)rec->n);
	sqlite3_bind_int64(f->f_ins_fill, 5, (sqlite3_int64)rec->created_ms);
	sqlite3_bind_text(f->f_ins_fill, 6, who, -1, SQLITE_STATIC);
	if (store_step_done(f->f_ins_fill, NULL) == -1)
		goto fail;
	for (i = 0; i < rec->n_keys; i++) {
		sqlite3_bind_text(f->f_ins_key, 1, rec->chip_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(f->f_ins_key, 2, (sqlite3_int64)i);
		sqlite3_bind_text(f->f_ins_key, 3, rec->keys[i]->code, -1,
		    SQLITE_STATIC);
		sqlite3_bind_blob(f->f_ins_key, 4, rec->keys[i]->key.data,
		    (int)rec->keys[i]->key.len, SQLITE_STATIC);
		if (store_step_done(f->f_ins_key, NULL) == -1)
			goto fail;
	}
	if (outbox_enqueue_all(f->f_ob, QROAM__MSG_TYPE__MT_FILL_RECORD, buf,
	    len) == -1 || (ik != NULL && filler_queue_ik(f, rec->chip_id,
	    ik) == -1))
		goto fail;
	rc = store_commit(f->f_db);
	goto out;
 fail:
	store_rollback(f->f_db);
 out:
	crypto_wipe(buf, len);
	free(buf);
	return rc;
}

/* MT_FILL_REQUEST from a factory or operator. */
static void
filler_fill(void *arg, struct conn *c, const struct frame *fr)
{
	struct filler		*f = arg;
	Qroam__FillRequest	*req;
	Qroam__FillRecord	*rec = NULL;
	const char		*why = NULL;
	uint8_t			 ik[32];
	unsigned		 m;

	req = (Qroam__FillRequest *)frame_unpack(fr, &qroam__fill_request__descriptor);
	if (req == NULL) {
		log_warnx("fill refused from %s: malformed request", conn_peer_addr(c));
		conn_send_status(c, fr->f_request_id, QROAM__STATUS_CODE__BAD_REQUEST,
		    "malformed FillRequest");
		return;
	}
	m = req->has_m ? req->m : f->f_conf->fc_m;
	qroam__fill_request__free_unpacked(req, NULL);
	/* Each key costs about 50 bytes on the wire; the record must fit a frame. */
	if ((size_t)m * 50 + 256 > f->f_conf->fc_common.cc_max_frame) {
		log_warnx("fill refused for %s: m=%u does not fit max_frame",
		    conn_peer_cn(c), m);
		conn_send_status(c, fr->f_request_id, QROAM__STATUS_CODE__BAD_REQUEST,
		    "m too large for max_frame");
		return;
	}
	if (fill_generate(m, f->f_conf->fc_k, f->f_conf->fc_n, &rec, &why) == -1) {
		log_warnx("fill refused for %s: %s", conn_peer_cn(c), why);
		conn_send_status(c, fr->f_request_id, QROAM__STATUS_CODE__BAD_REQUEST,
		    why);
		return;
	}
	if (f->f_kmp)
		qrand_bytes(ik, sizeof(ik));
	if (filler_store(f, rec, conn_peer_cn(c), f->f_kmp ? ik : NULL) == -1) {
		log_warnx("fill for %s not stored", conn_peer_cn(c));
		conn_send_status(c, fr->f_request_id, QROAM__STATUS_CODE__INTERNAL,
		    "store failed");
		fill_record_free(rec);
		crypto_wipe(ik, sizeof(ik));
		return;
	}
	metric_inc(f->f_fills, NULL);
	log_info("fill chip=%.16s m=%u k=%u n=%u for %s", rec->chip_id, rec->m,
	    rec->k, rec->n, conn_peer_cn(c));
	/* IK_v goes into the chip with the reply, and nowhere else. */
	if (f->f_kmp) {
		rec->has_ik = 1;
		rec->ik.data = ik;
		rec->ik.len = sizeof(ik);
	}
	conn_send(c, QROAM__MSG_TYPE__MT_FILL_REPLY, fr->f_request_id, &rec->base);
	rec->has_ik = 0;
	rec->ik.data = NULL;
	rec->ik.len = 0;
	crypto_wipe(ik, sizeof(ik));
	fill_record_free(rec);
	outbox_kick(f->f_ob);
}

/* The fill statements on the outbox service's store. */
static void
filler_open(void *arg, const void *conf, const struct topo *topo,
    sqlite3 *db, struct outbox *ob)
{
	struct filler	*f = arg;

	f->f_conf = conf;
	f->f_db = db;
	f->f_ob = ob;
	/* With a KMP in the topology, each chip gets an IK_v for it. */
	f->f_kmp = topo->t_kmp_tls.ep_port != 0 && outbox_add_dest(ob,
	    FILLER_KMP_DEST, &topo->t_kmp_tls, "kmp") == 0;
	f->f_fills = metric_counter("qroam_fills_total",
	    "Chips filled (fill records stored and answered).", NULL);
	f->f_ins_fill = store_prepare(db, "INSERT INTO fills"
	    " (chip_id, m, k, n, created_ms, requested_by) VALUES (?,?,?,?,?,?)");
	f->f_ins_key = store_prepare(db, "INSERT INTO fill_keys"
	    " (chip_id, idx, code, key) VALUES (?,?,?,?)");
}

const struct outboxd_proto filler_proto = {
	.op_role = "filler",
	.op_schema = filler_schema,
	.op_nschema = sizeof(filler_schema) / sizeof(filler_schema[0]),
	.op_roles = { "factory", "operator" },
	.op_refused = "not a factory",
	.op_refused_detail = "certificate role may not fill chips",
	.op_type = QROAM__MSG_TYPE__MT_FILL_REQUEST,
	.op_backlog = "fill records",
	.op_count = "fills",
	.op_count_sql = "SELECT count(*) FROM fills",
	.op_state_size = sizeof(struct filler),
	.op_open = filler_open,
	.op_request = filler_fill,
};
