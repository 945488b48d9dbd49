/*
 * The echo server and ping clients of the connection tests; see echo.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn.h"
#include "frame.h"

#include "echo.h"
#include "testutil.h"

/* Close c inside on_frame, close it again, then try to send on it. */
static void
echo_close_twice(struct echo_server *es, struct conn *c,
    const struct frame *f, const char *reason)
{
	conn_close(c, reason);
	conn_close(c, "second close is ignored");
	assert_false(conn_is_open(c));
	es->es_send_after_close = conn_send_status(c, f->f_request_id,
	    QROAM__STATUS_CODE__OK, NULL);
}

/* Record the frame and its peer, then answer as es_mode says. */
static void
echo_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct echo_server	*es = arg;
	Qroam__Status		*st;

	if (es->es_frames < ECHO_MAXRIDS)
		es->es_rids[es->es_frames] = f->f_request_id;
	es->es_frames++;
	snprintf(es->es_cn, sizeof(es->es_cn), "%s", conn_peer_cn(c));
	snprintf(es->es_role, sizeof(es->es_role), "%s", conn_peer_role(c));
	snprintf(es->es_addr, sizeof(es->es_addr), "%s", conn_peer_addr(c));
	assert_true(conn_is_open(c));
	switch (es->es_mode) {
	case ECHO_SILENT:
		return;
	case ECHO_CLOSE:
		echo_close_twice(es, c, f, "dropped by test");
		return;
	default:
		break;
	}
	st = (Qroam__Status *)frame_unpack(f, &qroam__status__descriptor);
	if (st == NULL)
		assert_int_equal(conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, "not a status"), 0);
	else {
		assert_int_equal(conn_send(c, f->f_type, f->f_request_id,
		    &st->base), 0);
		qroam__status__free_unpacked(st, NULL);
	}
	if (es->es_mode == ECHO_REPLY_CLOSE)
		echo_close_twice(es, c, f, "closed after reply");
}

/* Count the close and keep its reason. */
static void
echo_on_close(struct conn *c, const char *reason, void *arg)
{
	struct echo_server	*es = arg;

	(void)c;
	es->es_closes++;
	snprintf(es->es_reason, sizeof(es->es_reason), "%s", reason);
}

static const struct conn_cb echo_cb = {
	.on_frame = echo_on_frame,
	.on_close = echo_on_close,
};

/* The listener takes options for the limits; es keeps tls to free it. */
void
echo_start(struct echo_server *es, SSL_CTX *tls, size_t max_frame,
    int idle_ms)
{
	struct conn_opts	o;

	memset(es, 0, sizeof(*es));
	es->es_base = event_base_new();
	assert_non_null(es->es_base);
	es->es_tls = tls;
	memset(&o, 0, sizeof(o));
	o.co_tls = tls;
	o.co_max_frame = max_frame;
	o.co_idle_ms = idle_ms;
	es->es_port = tu_free_port();
	es->es_l = listener_new(es->es_base, "127.0.0.1", es->es_port, &o,
	    &echo_cb, es);
	assert_non_null(es->es_l);
}

/* Connections are freed after their callbacks, hence the short run. */
void
echo_stop(struct echo_server *es)
{
	listener_free(es->es_l);
	tu_run_for(es->es_base, 20);
	event_base_free(es->es_base);
	SSL_CTX_free(es->es_tls);
}

/* conn_open_sync() on es's base, with its error text on failure. */
struct conn *
echo_client(struct echo_server *es, const struct conn_opts *o)
{
	struct conn_opts	 plain;
	struct conn		*c;
	char			 err[256];

	if (o == NULL) {
		memset(&plain, 0, sizeof(plain));
		o = &plain;
	}
	err[0] = '\0';
	c = conn_open_sync(es->es_base, "127.0.0.1", es->es_port, o,
	    ECHO_WAIT_MS, err, sizeof(err));
	if (c == NULL)
		fail_msg("conn_open_sync: %s", err);
	return c;
}

/* A ping is a Status STALE carrying detail. */
int
echo_send(struct conn *c, uint64_t rid, const char *detail)
{
	Qroam__Status	st = QROAM__STATUS__INIT;

	st.code = QROAM__STATUS_CODE__STALE;
	st.detail = (char *)detail;
	return conn_send(c, QROAM__MSG_TYPE__MT_STATUS, rid, &st.base);
}

/* Encode the ping as echo_send() would and copy it after *n bytes. */
void
echo_append(uint8_t *buf, size_t size, size_t *n, uint64_t rid,
    const char *detail)
{
	Qroam__Status	 st = QROAM__STATUS__INIT;
	uint8_t		*one;
	size_t		 len;

	st.code = QROAM__STATUS_CODE__STALE;
	st.detail = (char *)detail;
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, rid,
	    &st.base, FRAME_MAX_DEFAULT, &one, &len), 0);
	assert_true(*n + len <= size);
	memcpy(buf + *n, one, len);
	*n += len;
	free(one);
}

/* The echo of a ping is the same Status under the same request id. */
void
echo_expect(struct conn *c, uint64_t rid, const char *detail)
{
	struct frame	 f;
	Qroam__Status	*st;

	assert_int_equal(conn_recv_sync(c, &f, ECHO_WAIT_MS), 0);
	assert_int_equal(f.f_type, QROAM__MSG_TYPE__MT_STATUS);
	assert_true(f.f_request_id == rid);
	st = (Qroam__Status *)frame_unpack(&f, &qroam__status__descriptor);
	assert_non_null(st);
	assert_int_equal(st->code, QROAM__STATUS_CODE__STALE);
	assert_string_equal(st->detail, detail);
	qroam__status__free_unpacked(st, NULL);
	frame_release(&f);
}

/* echo_send() then echo_expect(). */
void
echo_roundtrip(struct conn *c, uint64_t rid, const char *detail)
{
	assert_int_equal(echo_send(c, rid, detail), 0);
	echo_expect(c, rid, detail);
}

/* tu_wait_count() on es's close counter. */
void
echo_wait_closes(struct echo_server *es, int closes)
{
	tu_wait_count(es->es_base, &es->es_closes, closes, ECHO_WAIT_MS);
}

/* Long enough for a late second on_close to show. */
void
echo_expect_closes(struct echo_server *es, int closes)
{
	tu_run_for(es->es_base, 50);
	assert_int_equal(es->es_closes, closes);
}

/* The client side first, then the server's count before and after the free. */
void
echo_expect_dropped(struct echo_server *es, struct conn *c, int closes,
    const char *reason, int frames)
{
	struct frame	f;

	assert_int_equal(conn_recv_sync(c, &f, ECHO_WAIT_MS), -1);
	assert_false(conn_is_open(c));
	echo_wait_closes(es, closes);
	assert_string_equal(es->es_reason, reason);
	assert_int_equal(es->es_frames, frames);
	conn_free_sync(c);
	echo_expect_closes(es, closes);
	assert_int_equal(listener_nconns(es->es_l), 0);
}
