/*
 * The chip stores of vchip.h: the calls for either store, the store file
 * of one vehicle (chip.h, on the loop, its answers deferred to the next
 * loop turn) and the TSP lists of M1, interned so that the vehicles of a
 * fleet, which all hold the same list, share one copy of it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "store.h"
#include "vchip_priv.h"

const char *const vchip_count_names[VCHIP_NCOUNT] = {
	"errors", "auth_ok", "sessions", "telemetry_sent", "telemetry_acked",
	"telemetry_stored", "telemetry_resent", "telemetry_dropped",
	"prepared_entries", "turned_back", "handovers",
	"reauth_after_handover", "key_exhausted", "refills",
};

/* The interned TSP lists of this process. */
struct vchip_m1 {
	struct vchip_m1	*m_next;
	char		 m_digest[65];	/* "" if interned by content */
	struct topo	*m_topo;
};
static struct vchip_m1	*vchip_m1s;

const struct topo *
vchip_interned(const char *digest)
{
	struct vchip_m1	*m;

	for (m = vchip_m1s; m != NULL; m = m->m_next)
		if (strcmp(m->m_digest, digest) == 0)
			return m->m_topo;
	return NULL;
}

const struct topo *
vchip_intern(struct topo *t, const char *digest)
{
	struct vchip_m1	*m;
	char		 buf[128];

	for (m = vchip_m1s; m != NULL; m = m->m_next) {
		if (digest != NULL && strcmp(m->m_digest, digest) == 0)
			break;
		if (digest == NULL && topo_differs(m->m_topo, t, buf,
		    sizeof(buf)) == NULL)
			break;
	}
	if (m != NULL) {
		chip_reg_tsps_free(t);
		free(t);
		return m->m_topo;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		chip_reg_tsps_free(t);
		free(t);
		return NULL;
	}
	snprintf(m->m_digest, sizeof(m->m_digest), "%s", digest ? digest : "");
	m->m_topo = t;
	m->m_next = vchip_m1s;
	vchip_m1s = m;
	return t;
}

int
vchip_m1_topo(const Qroam__M1 *m1, struct topo *t)
{
	struct topo_tsp	*tt;
	size_t		 i, j;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < m1->n_tsps && i < TOPO_MAXTSP; i++) {
		tt = &t->t_tsps[t->t_ntsps];
		snprintf(tt->tt_id, sizeof(tt->tt_id), "%s", m1->tsps[i]->tsp_id);
		snprintf(tt->tt_vehicle.ep_host, sizeof(tt->tt_vehicle.ep_host),
		    "%s", m1->tsps[i]->host);
		tt->tt_vehicle.ep_port = (uint16_t)m1->tsps[i]->port;
		if ((tt->tt_region = calloc(m1->tsps[i]->n_region + 1,
		    sizeof(*tt->tt_region))) == NULL) {
			chip_reg_tsps_free(t);
			return -1;
		}
		for (j = 0; j < m1->tsps[i]->n_region; j++) {
			tt->tt_region[j].gp_lat = m1->tsps[i]->region[j]->lat;
			tt->tt_region[j].gp_lon = m1->tsps[i]->region[j]->lon;
		}
		tt->tt_nregion = m1->tsps[i]->n_region;
		t->t_ntsps++;
	}
	return 0;
}

struct vchip_op *
vchip_op_new(struct vchip *ch, enum vchip_opkind kind)
{
	struct vchip_op	*op;

	op = xcalloc(1, sizeof(*op));
	op->op_kind = kind;
	op->op_chip = ch;
	return op;
}

void
vchip_op_free(struct vchip_op *op)
{
	if (op == NULL)
		return;
	chip_key_wipe(&op->op_key);
	if (op->op_buf != NULL)
		crypto_wipe(op->op_buf, op->op_len);
	free(op->op_buf);
	free(op->op_pbv);
	free(op->op_detail);
	free(op->op_err);
	free(op);
}

void
vchip_op_answer(struct vchip_op *op)
{
	if (op->op_kind == VOP_TAKE && op->op_key_cb != NULL)
		op->op_key_cb(op->op_arg, op->op_draw, op->op_draw ==
		    CHIP_DRAW_OK ? &op->op_key : NULL);
	else if (op->op_done_cb != NULL)
		op->op_done_cb(op->op_arg, op->op_rc);
}

/* A file chip's answers, on the loop turn after the calls. */
static void
vchip_file_answers(evutil_socket_t fd, short ev, void *arg)
{
	struct vchip		*ch = arg;
	struct vchip_op		*op;

	(void)fd;
	(void)ev;
	while ((op = TAILQ_FIRST(&ch->ch_answers)) != NULL) {
		TAILQ_REMOVE(&ch->ch_answers, op, op_entry);
		vchip_op_answer(op);
		vchip_op_free(op);
	}
}

/* Answer op of a file chip on the next loop turn. */
static void
vchip_file_defer(struct vchip_op *op)
{
	struct vchip	*ch = op->op_chip;

	TAILQ_INSERT_TAIL(&ch->ch_answers, op, op_entry);
	event_active(ch->ch_ev, EV_TIMEOUT, 0);
}

struct vchip *
vchip_open_file(struct event_base *base, const char *path)
{
	struct vchip	*ch;

	ch = xcalloc(1, sizeof(*ch));
	ch->ch_kind = VCHIP_FILE;
	ch->ch_base = base;
	TAILQ_INIT(&ch->ch_answers);
	if ((ch->ch_db = chip_open(path)) == NULL) {
		free(ch);
		return NULL;
	}
	if ((ch->ch_ev = event_new(base, -1, 0, vchip_file_answers,
	    ch)) == NULL)
		fatalx("cannot create timers");
	return ch;
}

void
vchip_close(struct vchip *ch)
{
	struct vchip_op	*op;

	if (ch == NULL || ch->ch_kind != VCHIP_FILE)
		return;
	while ((op = TAILQ_FIRST(&ch->ch_answers)) != NULL) {
		TAILQ_REMOVE(&ch->ch_answers, op, op_entry);
		vchip_op_free(op);
	}
	event_free(ch->ch_ev);
	chip_close(ch->ch_db);
	free(ch);
}

int
vchip_get(struct vchip *ch, struct chip_info *ci)
{
	if (ch->ch_kind == VCHIP_FILE)
		return chip_get(ch->ch_db, ci);
	if (!ch->ch_filled) {
		memset(ci, 0, sizeof(*ci));
		return 0;
	}
	*ci = ch->ch_info;
	return 1;
}

int
vchip_reg(struct vchip *ch, struct chip_reg *cr)
{
	if (ch->ch_kind == VCHIP_FILE)
		return chip_reg_load(ch->ch_db, cr);
	memset(cr, 0, sizeof(*cr));
	if (!ch->ch_registered)
		return 0;
	if ((cr->cr_pbv = malloc(ch->ch_pbvlen)) == NULL)
		return -1;
	memcpy(cr->cr_pbv, ch->ch_pbv, ch->ch_pbvlen);
	cr->cr_pbvlen = ch->ch_pbvlen;
	memcpy(cr->cr_vid, ch->ch_vid, sizeof(cr->cr_vid));
	memcpy(cr->cr_chip_id, ch->ch_reg_chip, sizeof(cr->cr_chip_id));
	cr->cr_ms = ch->ch_reg_ms;
	return 1;
}

const struct topo *
vchip_tsps(struct vchip *ch)
{
	struct topo	*t;

	if (ch->ch_kind == VCHIP_FLEET || ch->ch_tsps_known)
		return ch->ch_tsps;
	ch->ch_tsps = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (chip_reg_tsps(ch->ch_db, t) <= 0) {
		free(t);
		ch->ch_tsps_known = 1;
		return NULL;
	}
	ch->ch_tsps = vchip_intern(t, NULL);
	ch->ch_tsps_known = ch->ch_tsps != NULL;
	return ch->ch_tsps;
}

int64_t
vchip_unused(struct vchip *ch, enum chip_mode mode)
{
	if (ch->ch_kind == VCHIP_FILE)
		return chip_unused(ch->ch_db, mode);
	if (!ch->ch_filled)
		return 0;
	if (mode == CHIP_SEQUENTIAL)
		return (int64_t)ch->ch_info.ci_m - ch->ch_maxd - 1;
	return (int64_t)ch->ch_info.ci_m - ch->ch_ndestroyed;
}

int64_t
vchip_counter(struct vchip *ch, const char *name)
{
	if (ch->ch_kind == VCHIP_FILE)
		return chip_counter(ch->ch_db, name);
	if (strcmp(name, "record_id_mark") == 0)
		return ch->ch_mark;
	return 0;
}

int64_t
vchip_record_floor(struct vchip *ch)
{
	if (ch->ch_kind == VCHIP_FILE)
		return chip_counter(ch->ch_db, "record_id_mark");
	return ch->ch_mark_floor;
}

void
vchip_event(struct vchip *ch, const char *kind, const char *tsp_id,
    const char *fmt, ...)
{
	struct vchip_op	*op;
	char		 detail[512];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (ch->ch_kind == VCHIP_FILE) {
		chip_event(ch->ch_db, kind, tsp_id, "%s", detail);
		return;
	}
	op = vchip_op_new(ch, VOP_EVENT);
	snprintf(op->op_name, sizeof(op->op_name), "%s", kind);
	if (tsp_id != NULL)
		snprintf(op->op_tsp, sizeof(op->op_tsp), "%s", tsp_id);
	op->op_detail = xstrdup(detail);
	op->op_ms = store_now_ms();
	vchipdb_queue(ch->ch_fdb, op);
}

void
vchip_count(struct vchip *ch, const char *name, int64_t delta)
{
	if (ch->ch_kind == VCHIP_FILE)
		chip_count(ch->ch_db, name, delta);
	else
		vchipdb_count(ch, name, delta);
}

int
vchip_async(const struct vchip *ch)
{
	return ch->ch_kind == VCHIP_FLEET;
}

/* Draw and destroy the next key of a file chip now. */
static void
vchip_file_take(struct vchip_op *op)
{
	sqlite3	*db = op->op_chip->ch_db;

	op->op_draw = chip_draw(db, op->op_mode, &op->op_key);
	if (op->op_draw == CHIP_DRAW_OK &&
	    chip_destroy_key(db, op->op_key.ck_index) == -1) {
		chip_key_wipe(&op->op_key);
		op->op_draw = CHIP_DRAW_ERROR;
	}
}

void
vchip_take_key(struct vchip *ch, enum chip_mode mode, vchip_key_cb cb,
    void *arg)
{
	struct vchip_op	*op = vchip_op_new(ch, VOP_TAKE);

	op->op_mode = mode;
	op->op_key_cb = cb;
	op->op_arg = arg;
	if (ch->ch_kind == VCHIP_FILE) {
		vchip_file_take(op);
		vchip_file_defer(op);
	} else
		vchipdb_queue(ch->ch_fdb, op);
}

int
vchip_raise(struct vchip *ch, const char *name, int64_t value,
    vchip_done_cb cb, void *arg)
{
	struct vchip_op	*op;

	if (ch->ch_kind == VCHIP_FILE)
		return chip_counter_raise(ch->ch_db, name, value);
	op = vchip_op_new(ch, VOP_RAISE);
	snprintf(op->op_name, sizeof(op->op_name), "%s", name);
	op->op_value = value;
	op->op_done_cb = cb;
	op->op_arg = arg;
	vchipdb_queue(ch->ch_fdb, op);
	return 1;
}

void
vchip_fill(struct vchip *ch, const Qroam__FillRecord *rec, vchip_done_cb cb,
    void *arg)
{
	struct vchip_op	*op = vchip_op_new(ch, VOP_FILL);

	op->op_done_cb = cb;
	op->op_arg = arg;
	if (ch->ch_kind == VCHIP_FILE) {
		op->op_rc = chip_fill(ch->ch_db, rec);
		vchip_file_defer(op);
		return;
	}
	op->op_len = qroam__fill_record__get_packed_size(rec);
	op->op_buf = xmalloc(op->op_len ? op->op_len : 1);
	qroam__fill_record__pack(rec, op->op_buf);
	vchipdb_queue(ch->ch_fdb, op);
}

/* M1's TSP list alone, packed, with its digest; 0 or -1. */
static int
vchip_pack_tsps(const Qroam__M1 *m1, struct vchip_op *op)
{
	Qroam__M1	tsps = QROAM__M1__INIT;
	uint8_t		h[CRYPTO_HASHLEN];

	tsps.tsps = m1->tsps;
	tsps.n_tsps = m1->n_tsps;
	op->op_len = qroam__m1__get_packed_size(&tsps);
	op->op_buf = xmalloc(op->op_len ? op->op_len : 1);
	qroam__m1__pack(&tsps, op->op_buf);
	crypto_sha256(op->op_buf, op->op_len, h);
	crypto_hex(h, sizeof(h), op->op_digest);
	return 0;
}

void
vchip_reg_save(struct vchip *ch, const char *vid, const char *chip_id,
    const Qroam__M1 *m1, vchip_done_cb cb, void *arg)
{
	struct vchip_op	*op = vchip_op_new(ch, VOP_REG);

	op->op_done_cb = cb;
	op->op_arg = arg;
	if (ch->ch_kind == VCHIP_FILE) {
		op->op_rc = chip_reg_save(ch->ch_db, vid, chip_id, m1);
		ch->ch_tsps_known = 0;
		vchip_file_defer(op);
		return;
	}
	if (chip_m1_check(vid, chip_id, m1) == -1) {
		op->op_rc = -1;
		vchipdb_queue(ch->ch_fdb, op);
		return;
	}
	snprintf(op->op_chip_id, sizeof(op->op_chip_id), "%s", chip_id);
	op->op_pbv = xmalloc(m1->pbv.len ? m1->pbv.len : 1);
	memcpy(op->op_pbv, m1->pbv.data, m1->pbv.len);
	op->op_pbvlen = m1->pbv.len;
	vchip_pack_tsps(m1, op);
	vchipdb_queue(ch->ch_fdb, op);
}
