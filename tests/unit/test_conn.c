/*
 * Unit tests of the connection layer on loopback: an echo server on a
 * listener, sync and async clients, frame limits, malformed input and
 * close semantics.  Mutual TLS is tested in test_conn_tls.c.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "conn.h"
#include "frame.h"
#include "log.h"

#include "echo.h"
#include "testutil.h"

static int
group_setup(void **state)
{
	(void)state;
	log_init("test_conn", 0);
	/* Like daemon_signals_new(): a write to a reset peer is not fatal. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void
test_plain_echo(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	char			 want[64];

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	c = echo_client(&sv, NULL);
	assert_true(conn_is_open(c));
	assert_string_equal(conn_peer_cn(c), "");
	assert_string_equal(conn_peer_role(c), "");
	snprintf(want, sizeof(want), "127.0.0.1:%u", sv.es_port);
	assert_string_equal(conn_peer_addr(c), want);

	echo_roundtrip(c, 42, "ping");
	echo_roundtrip(c, 43, "pong");
	assert_int_equal(sv.es_frames, 2);
	assert_string_equal(sv.es_cn, "");
	assert_int_equal(strncmp(sv.es_addr, "127.0.0.1:", 10), 0);
	assert_int_equal(listener_nconns(sv.es_l), 1);

	conn_free_sync(c);
	echo_wait_closes(&sv, 1);
	assert_string_equal(sv.es_reason, "connection closed by peer");
	assert_int_equal(listener_nconns(sv.es_l), 0);
	echo_expect_closes(&sv, 1);
	echo_stop(&sv);
}

static void
test_many_frames_one_write(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	uint8_t			*all;
	size_t			 n = 0;
	char			 detail[32];
	int			 i, count = 300;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	c = echo_client(&sv, NULL);
	all = malloc((size_t)count * 64);
	assert_non_null(all);
	for (i = 1; i <= count; i++) {
		snprintf(detail, sizeof(detail), "msg %d", i);
		echo_append(all, (size_t)count * 64, &n, i, detail);
	}
	assert_int_equal(conn_send_raw(c, all, n), 0);
	free(all);
	for (i = 1; i <= count; i++) {
		snprintf(detail, sizeof(detail), "msg %d", i);
		echo_expect(c, i, detail);
	}
	assert_int_equal(sv.es_frames, count);
	for (i = 0; i < count; i++)
		assert_true(sv.es_rids[i] == (uint64_t)i + 1);
	conn_free_sync(c);
	echo_wait_closes(&sv, 1);
	echo_stop(&sv);
}

/* One byte at a time: frames are reassembled across reads. */
static void
test_byte_by_byte(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	uint8_t			 buf[64];
	size_t			 len = 0, i;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	c = echo_client(&sv, NULL);
	echo_append(buf, sizeof(buf), &len, 9, "slow");
	for (i = 0; i + 1 < len; i++) {
		assert_int_equal(conn_send_raw(c, buf + i, 1), 0);
		tu_run_for(sv.es_base, 2);
		assert_int_equal(sv.es_frames, 0);
	}
	assert_int_equal(conn_send_raw(c, buf + i, 1), 0);
	tu_wait_count(sv.es_base, &sv.es_frames, 1, ECHO_WAIT_MS);
	echo_expect(c, 9, "slow");
	conn_free_sync(c);
	echo_stop(&sv);
}

static void
test_frame_too_big(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	struct conn_opts	 o;
	uint8_t			 raw[FRAME_HDRLEN + 1100];
	char			 detail[1100];

	(void)state;
	echo_start(&sv, NULL, 1024, 0);
	c = echo_client(&sv, NULL);
	/* A 1010-byte detail makes an envelope of exactly 1024: accepted. */
	memset(detail, 'd', sizeof(detail));
	detail[1010] = '\0';
	echo_roundtrip(c, 1, detail);
	/* 1025 announced: closed from the header, body never read. */
	memset(raw, 0, sizeof(raw));
	raw[2] = 0x04;
	raw[3] = 0x01;
	assert_int_equal(conn_send_raw(c, raw, sizeof(raw)), 0);
	echo_expect_dropped(&sv, c, 1, "frame too big", 1);

	/* A sender with the same limit refuses to encode 1025 bytes... */
	memset(&o, 0, sizeof(o));
	o.co_max_frame = 1024;
	c = echo_client(&sv, &o);
	detail[1010] = 'd';
	detail[1011] = '\0';
	assert_int_equal(echo_send(c, 1, detail), -1);
	/* ...and the refusal did not break the connection. */
	assert_true(conn_is_open(c));
	echo_roundtrip(c, 4, "after");
	conn_free_sync(c);
	echo_stop(&sv);
}

/* Send raw bytes on a fresh connection and expect the server to drop it. */
static void
expect_malformed(struct echo_server *sv, const uint8_t *raw, size_t len,
    int replies_before)
{
	struct conn	*c;
	struct frame	 f;
	int		 closes = sv->es_closes, frames = sv->es_frames, i;

	c = echo_client(sv, NULL);
	assert_int_equal(conn_send_raw(c, raw, len), 0);
	for (i = 0; i < replies_before; i++) {
		assert_int_equal(conn_recv_sync(c, &f, ECHO_WAIT_MS), 0);
		frame_release(&f);
	}
	echo_expect_dropped(sv, c, closes + 1, "malformed frame",
	    frames + replies_before);
}

static void
test_malformed_closes(void **state)
{
	static const uint8_t zero[] = { 0, 0, 0, 0 };
	static const uint8_t garbage[] = { 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff };
	/* version 2 */
	static const uint8_t version[] = { 0, 0, 0, 4, 0x08, 0x02, 0x10, 0x0a };
	/* unknown field 15 */
	static const uint8_t unknown[] = { 0, 0, 0, 6, 0x08, 0x01, 0x10, 0x0a,
	    0x78, 0x01 };
	/* a valid frame (Status OK, rid 7), then garbage in the same write */
	static const uint8_t valid_then_bad[] = { 0, 0, 0, 0x0a, 0x08, 0x01, 0x10,
	    0x0a, 0x1a, 0x02, 0x08, 0x00, 0x20, 0x07, 0, 0, 0, 2, 0xff, 0xff };
	struct echo_server	sv;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	expect_malformed(&sv, zero, sizeof(zero), 0);
	expect_malformed(&sv, garbage, sizeof(garbage), 0);
	expect_malformed(&sv, version, sizeof(version), 0);
	expect_malformed(&sv, unknown, sizeof(unknown), 0);
	expect_malformed(&sv, valid_then_bad, sizeof(valid_then_bad), 1);
	assert_int_equal(sv.es_closes, 5);
	echo_stop(&sv);
}

static void
test_close_inside_on_frame(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	uint8_t			 all[256];
	size_t			 n = 0;
	uint64_t		 rid;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	sv.es_mode = ECHO_REPLY_CLOSE;
	c = echo_client(&sv, NULL);
	/* Three frames in one write: only the first is handled. */
	for (rid = 1; rid <= 3; rid++)
		echo_append(all, sizeof(all), &n, rid, "x");
	assert_int_equal(conn_send_raw(c, all, n), 0);
	/* The queued reply is flushed before the close. */
	echo_expect(c, 1, "x");
	echo_expect_dropped(&sv, c, 1, "closed after reply", 1);
	assert_int_equal(sv.es_send_after_close, -1);

	/* Close with nothing queued: immediate, still one on_close. */
	sv.es_mode = ECHO_CLOSE;
	sv.es_send_after_close = 0;
	c = echo_client(&sv, NULL);
	assert_int_equal(conn_send_raw(c, all, n), 0);
	echo_expect_dropped(&sv, c, 2, "dropped by test", 2);
	assert_int_equal(sv.es_send_after_close, -1);
	echo_stop(&sv);
}

/* State of an async client. */
struct client {
	int	cl_connected;
	int	cl_frames;
	int	cl_closes;
	int	cl_close_in_frame;
	char	cl_reason[160];
};

static void
cl_on_connected(struct conn *c, void *arg)
{
	struct client	*cl = arg;

	cl->cl_connected++;
	assert_true(conn_is_open(c));
	assert_int_equal(echo_send(c, 100 + cl->cl_connected, "async"), 0);
}

static void
cl_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct client	*cl = arg;

	cl->cl_frames++;
	assert_true(f->f_request_id == 100 + (uint64_t)cl->cl_frames);
	if (cl->cl_close_in_frame)
		conn_close(c, "client done");
}

static void
cl_on_close(struct conn *c, const char *reason, void *arg)
{
	struct client	*cl = arg;

	(void)c;
	cl->cl_closes++;
	snprintf(cl->cl_reason, sizeof(cl->cl_reason), "%s", reason);
}

static const struct conn_cb cl_cb = {
	.on_connected = cl_on_connected,
	.on_frame = cl_on_frame,
	.on_close = cl_on_close,
};

static void
test_async_client(void **state)
{
	struct echo_server	 sv;
	struct client		 cl;
	struct conn_opts	 o;
	struct conn		*c;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	memset(&cl, 0, sizeof(cl));
	memset(&o, 0, sizeof(o));
	cl.cl_close_in_frame = 1;
	c = conn_connect(sv.es_base, "127.0.0.1", sv.es_port, &o, &cl_cb, &cl);
	assert_non_null(c);
	/* Sent while still connecting: queued and delivered. */
	assert_int_equal(echo_send(c, 101, "early"), 0);
	tu_wait_count(sv.es_base, &cl.cl_closes, 1, ECHO_WAIT_MS);
	assert_int_equal(cl.cl_connected, 1);
	assert_int_equal(cl.cl_frames, 1);
	assert_string_equal(cl.cl_reason, "client done");
	echo_wait_closes(&sv, 1);
	tu_run_for(sv.es_base, 50);
	assert_int_equal(cl.cl_closes, 1);
	assert_int_equal(sv.es_closes, 1);
	assert_int_equal(sv.es_rids[0], 101);
	echo_stop(&sv);
}

/* The barrier's commit counter in test_barrier_holds_output. */
static uint64_t	barrier_commits;

static uint64_t
barrier_written(void *arg)
{
	(void)arg;
	return barrier_commits;
}

static void
barrier_on_connected(struct conn *c, void *arg)
{
	(void)arg;
	assert_int_equal(echo_send(c, 101, "connected"), 0);
}

static void
barrier_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct client	*cl = arg;

	(void)c;
	(void)f;
	cl->cl_frames++;
}

static const struct conn_cb barrier_cb = {
	.on_connected = barrier_on_connected,
	.on_frame = barrier_on_frame,
	.on_close = cl_on_close,
};

static void
test_barrier_holds_output(void **state)
{
	struct echo_server	 sv;
	struct conn_barrier	*b;
	struct client		 cl;
	struct conn_opts	 o;
	struct conn		*c;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	barrier_commits = 0;
	b = conn_barrier_new(barrier_written, NULL);
	memset(&cl, 0, sizeof(cl));
	memset(&o, 0, sizeof(o));
	o.co_barrier = b;
	c = conn_connect(sv.es_base, "127.0.0.1", sv.es_port, &o, &barrier_cb,
	    &cl);
	assert_non_null(c);
	tu_wait_count(sv.es_base, &sv.es_frames, 1, ECHO_WAIT_MS);
	/* Nothing to wait for: the on_connected ping went at once. */
	assert_int_equal(sv.es_rids[0], 101);

	/* Commit 1 is made, not durable: what depends on it waits. */
	barrier_commits = 1;
	assert_int_equal(echo_send(c, 1, "after commit 1"), 0);
	barrier_commits = 2;
	assert_int_equal(echo_send(c, 2, "after commit 2"), 0);
	/* Output that depends on nothing still queues behind it, in order. */
	assert_int_equal(conn_send_now(c, QROAM__MSG_TYPE__MT_STATUS, 3, NULL),
	    0);
	tu_run_for(sv.es_base, 100);
	assert_int_equal(sv.es_frames, 1);

	/* Commit 1 durable: only the first message goes. */
	conn_barrier_release(b, 1);
	tu_wait_count(sv.es_base, &sv.es_frames, 2, ECHO_WAIT_MS);
	tu_run_for(sv.es_base, 100);
	assert_int_equal(sv.es_frames, 2);
	assert_int_equal(sv.es_rids[1], 1);

	/* Commit 2 durable: the rest, in the order sent. */
	conn_barrier_release(b, 2);
	tu_wait_count(sv.es_base, &sv.es_frames, 4, ECHO_WAIT_MS);
	assert_int_equal(sv.es_rids[2], 2);
	assert_int_equal(sv.es_rids[3], 3);

	/* All durable again: output leaves at once. */
	assert_int_equal(echo_send(c, 4, "nothing pending"), 0);
	tu_wait_count(sv.es_base, &sv.es_frames, 5, ECHO_WAIT_MS);

	/* A close waits for held output, which then leaves first. */
	barrier_commits = 3;
	assert_int_equal(echo_send(c, 5, "held at close"), 0);
	conn_close(c, "client done");
	tu_run_for(sv.es_base, 100);
	assert_int_equal(sv.es_frames, 5);
	conn_barrier_release(b, 3);
	tu_wait_count(sv.es_base, &sv.es_frames, 6, ECHO_WAIT_MS);
	assert_int_equal(sv.es_rids[5], 5);
	tu_wait_count(sv.es_base, &cl.cl_closes, 1, ECHO_WAIT_MS);
	conn_barrier_free(b);
	echo_stop(&sv);
}

static void
test_connect_refused(void **state)
{
	struct event_base	*base;
	struct conn_opts	 o;
	struct client		 cl;
	struct conn		*c;
	char			 err[256];
	uint16_t		 port;

	(void)state;
	base = event_base_new();
	assert_non_null(base);
	memset(&o, 0, sizeof(o));
	o.co_connect_ms = 1000;
	port = tu_free_port();
	err[0] = '\0';
	assert_null(conn_open_sync(base, "127.0.0.1", port, &o, ECHO_WAIT_MS,
	    err, sizeof(err)));
	assert_non_null(strstr(err, "127.0.0.1"));

	memset(&cl, 0, sizeof(cl));
	c = conn_connect(base, "127.0.0.1", port, &o, &cl_cb, &cl);
	assert_non_null(c);
	tu_wait_count(base, &cl.cl_closes, 1, ECHO_WAIT_MS);
	tu_run_for(base, 30);
	assert_int_equal(cl.cl_closes, 1);
	assert_int_equal(cl.cl_connected, 0);
	assert_true(cl.cl_reason[0] != '\0');
	event_base_free(base);
}

static void
test_idle_timeout(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;

	(void)state;
	echo_start(&sv, NULL, 0, 300);
	c = echo_client(&sv, NULL);
	/* Activity keeps it open... */
	echo_roundtrip(c, 1, "a");
	/* ...silence closes it. */
	echo_expect_dropped(&sv, c, 1, "idle timeout", 1);
	echo_stop(&sv);
}

static void
test_recv_timeout(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	struct frame		 f;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	sv.es_mode = ECHO_SILENT;
	c = echo_client(&sv, NULL);
	assert_int_equal(echo_send(c, 1, "anyone?"), 0);
	assert_int_equal(conn_recv_sync(c, &f, 150), -1);
	/* A timeout is not a close. */
	assert_true(conn_is_open(c));
	assert_int_equal(sv.es_frames, 1);
	assert_int_equal(sv.es_closes, 0);
	sv.es_mode = ECHO_REPLY;
	echo_roundtrip(c, 2, "now");
	conn_free_sync(c);
	echo_stop(&sv);
}

static void
test_listener_free_closes_conns(void **state)
{
	struct echo_server	 sv;
	struct conn		*c1, *c2;
	struct frame		 f;

	(void)state;
	echo_start(&sv, NULL, 0, 0);
	c1 = echo_client(&sv, NULL);
	c2 = echo_client(&sv, NULL);
	echo_roundtrip(c1, 1, "one");
	echo_roundtrip(c2, 2, "two");
	assert_int_equal(listener_nconns(sv.es_l), 2);
	listener_free(sv.es_l);
	assert_int_equal(sv.es_closes, 2);
	assert_string_equal(sv.es_reason, "shutdown");
	assert_int_equal(conn_recv_sync(c1, &f, ECHO_WAIT_MS), -1);
	assert_int_equal(conn_recv_sync(c2, &f, ECHO_WAIT_MS), -1);
	conn_free_sync(c1);
	conn_free_sync(c2);
	echo_expect_closes(&sv, 2);
	event_base_free(sv.es_base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_echo),
		cmocka_unit_test(test_many_frames_one_write),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_frame_too_big),
		cmocka_unit_test(test_malformed_closes),
		cmocka_unit_test(test_close_inside_on_frame),
		cmocka_unit_test(test_async_client),
		cmocka_unit_test(test_barrier_holds_output),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_recv_timeout),
		cmocka_unit_test(test_listener_free_closes_conns),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
