/*
 * Unit tests of the long-lived channels on loopback, against the echo
 * server of the connection tests: many requests multiplexed on one
 * connection, requests waiting for the connect, timeouts, cancels, a lost
 * connection failing only what it carried and the reconnect after it, a
 * peer that is not there yet, and a peer that never answers a ping.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "chan.h"
#include "conn.h"
#include "frame.h"
#include "log.h"

#include "echo.h"
#include "testutil.h"

#define NREQ	200

/* What the callbacks of one test saw. */
struct seen {
	int	replies;
	int	failures;
	char	why[256];
	uint64_t last_rid;
};

static void
seen_cb(void *arg, const struct frame *f, const char *why)
{
	struct seen	*s = arg;

	if (f != NULL) {
		s->replies++;
		s->last_rid = f->f_request_id;
	} else {
		s->failures++;
		snprintf(s->why, sizeof(s->why), "%s", why);
	}
}

static int
group_setup(void **state)
{
	(void)state;
	log_init("test_chan", 0);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static struct chan *
chan_to(struct echo_server *es, uint16_t port, int ping_ms)
{
	struct chan_opts	o;
	struct chan		*ch;

	memset(&o, 0, sizeof(o));
	o.cho_name = "echo";
	o.cho_host = "127.0.0.1";
	o.cho_port = port;
	o.cho_conn.co_connect_ms = 1000;
	o.cho_ping_ms = ping_ms;
	ch = chan_new(es->es_base, &o);
	assert_non_null(ch);
	return ch;
}

static int
chan_open_p(void *arg)
{
	return chan_is_open(arg);
}

static int
req(struct chan *ch, const char *detail, int timeout_ms, struct seen *s,
    uint64_t *id)
{
	Qroam__Status	st = QROAM__STATUS__INIT;

	st.code = QROAM__STATUS_CODE__STALE;
	st.detail = (char *)detail;
	return chan_request(ch, QROAM__MSG_TYPE__MT_STATUS, &st.base,
	    timeout_ms, seen_cb, s, id);
}

/* Requests made before the connect wait for it; all share one conn. */
static void
test_multiplexed(void **state)
{
	struct echo_server	 sv;
	struct chan		*ch;
	struct seen		 s;
	uint64_t		 id;
	int			 i;

	(void)state;
	memset(&s, 0, sizeof(s));
	echo_start(&sv, NULL, 0, 0);
	ch = chan_to(&sv, sv.es_port, 0);
	assert_false(chan_is_open(ch));
	for (i = 0; i < NREQ; i++)
		assert_int_equal(req(ch, "x", 3000, &s, &id), 0);
	assert_int_equal(chan_npending(ch), NREQ);
	tu_wait_count(sv.es_base, &s.replies, NREQ, ECHO_WAIT_MS);
	assert_int_equal(s.failures, 0);
	assert_int_equal(chan_npending(ch), 0);
	assert_int_equal(listener_nconns(sv.es_l), 1);
	assert_int_equal(sv.es_frames, NREQ);
	for (i = 0; i < NREQ; i++)
		assert_int_equal(sv.es_rids[i], (uint64_t)i + 1);
	/* More requests once open go out at once, on the same connection. */
	for (i = 0; i < NREQ; i++)
		assert_int_equal(req(ch, "y", 3000, &s, &id), 0);
	tu_wait_count(sv.es_base, &s.replies, 2 * NREQ, ECHO_WAIT_MS);
	assert_int_equal(chan_nconnects(ch), 1);
	assert_int_equal(listener_nconns(sv.es_l), 1);
	chan_free(ch);
	echo_stop(&sv);
}

/* A silent peer: the request times out, a cancelled one never calls. */
static void
test_timeout_and_cancel(void **state)
{
	struct echo_server	 sv;
	struct chan		*ch;
	struct seen		 s, c;
	uint64_t		 id, cid;

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	echo_start(&sv, NULL, 0, 0);
	sv.es_mode = ECHO_SILENT;
	ch = chan_to(&sv, sv.es_port, 0);
	assert_int_equal(req(ch, "t", 100, &s, &id), 0);
	assert_int_equal(req(ch, "c", 100, &c, &cid), 0);
	chan_cancel(ch, cid);
	tu_wait_count(sv.es_base, &s.failures, 1, ECHO_WAIT_MS);
	assert_non_null(strstr(s.why, "no answer from echo within 100ms"));
	tu_run_for(sv.es_base, 150);
	assert_int_equal(c.failures + c.replies, 0);
	assert_int_equal(chan_npending(ch), 0);
	assert_true(chan_is_open(ch));
	chan_free(ch);
	echo_stop(&sv);
}

/* A lost connection fails what was in flight; the channel comes back. */
static void
test_loss_and_reconnect(void **state)
{
	struct echo_server	 sv;
	struct chan		*ch;
	struct seen		 s, after;
	uint64_t		 id;

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(&after, 0, sizeof(after));
	echo_start(&sv, NULL, 0, 0);
	sv.es_mode = ECHO_CLOSE;
	ch = chan_to(&sv, sv.es_port, 0);
	assert_int_equal(req(ch, "a", 3000, &s, &id), 0);
	assert_int_equal(req(ch, "b", 3000, &s, &id), 0);
	tu_wait_count(sv.es_base, &s.failures, 2, ECHO_WAIT_MS);
	assert_non_null(strstr(s.why, "channel lost to echo"));
	assert_int_equal(s.replies, 0);
	sv.es_mode = ECHO_REPLY;
	tu_wait(sv.es_base, chan_open_p, ch, ECHO_WAIT_MS);
	assert_int_equal(chan_nconnects(ch), 2);
	assert_int_equal(req(ch, "c", 3000, &after, &id), 0);
	tu_wait_count(sv.es_base, &after.replies, 1, ECHO_WAIT_MS);
	assert_int_equal(after.last_rid, id);
	chan_free(ch);
	echo_stop(&sv);
}

/* The peer of test_peer_not_there_yet: answer each frame with OK. */
static void
ok_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	(void)arg;
	conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__OK, NULL);
}

static const struct conn_cb ok_cb = { .on_frame = ok_on_frame };

/* Nobody listens: waiting requests fail; once a peer is up they pass. */
static void
test_peer_not_there_yet(void **state)
{
	struct echo_server	 sv;
	struct conn_opts	 lo;
	struct chan		*ch;
	struct seen		 s;
	uint64_t		 id;

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(&lo, 0, sizeof(lo));
	echo_start(&sv, NULL, 0, 0);
	listener_free(sv.es_l);
	tu_run_for(sv.es_base, 20);
	ch = chan_to(&sv, sv.es_port, 0);
	assert_int_equal(req(ch, "early", 3000, &s, &id), 0);
	tu_wait_count(sv.es_base, &s.failures, 1, ECHO_WAIT_MS);
	assert_non_null(strstr(s.why, "cannot connect to echo"));
	assert_false(chan_is_open(ch));
	assert_int_equal(chan_nconnects(ch), 0);
	sv.es_l = listener_new(sv.es_base, "127.0.0.1", sv.es_port, &lo,
	    &ok_cb, NULL);
	assert_non_null(sv.es_l);
	assert_int_equal(req(ch, "later", 3000, &s, &id), 0);
	tu_wait_count(sv.es_base, &s.replies, 1, ECHO_WAIT_MS);
	assert_int_equal(s.last_rid, id);
	assert_int_equal(s.failures, 1);
	chan_free(ch);
	echo_stop(&sv);
}

/* A peer that accepts but never reads is lost after its silent pings. */
static void
test_dead_peer(void **state)
{
	struct event_base	*base;
	struct sockaddr_in	 sin;
	struct chan_opts	 o;
	struct chan		*ch;
	struct seen		 s;
	uint64_t		 id;
	int			 fd, one = 1;
	Qroam__Status		 st = QROAM__STATUS__INIT;

	(void)state;
	memset(&s, 0, sizeof(s));
	base = event_base_new();
	assert_non_null(base);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(tu_free_port());
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	memset(&o, 0, sizeof(o));
	o.cho_name = "mute";
	o.cho_host = "127.0.0.1";
	o.cho_port = ntohs(sin.sin_port);
	o.cho_ping_ms = 50;
	ch = chan_new(base, &o);
	assert_non_null(ch);
	tu_wait(base, chan_open_p, ch, ECHO_WAIT_MS);
	st.code = QROAM__STATUS_CODE__STALE;
	assert_int_equal(chan_request(ch, QROAM__MSG_TYPE__MT_STATUS,
	    &st.base, 0, seen_cb, &s, &id), 0);
	tu_wait_count(base, &s.failures, 1, ECHO_WAIT_MS);
	assert_non_null(strstr(s.why, "channel lost to mute: idle timeout"));
	chan_free(ch);
	close(fd);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multiplexed),
		cmocka_unit_test(test_timeout_and_cancel),
		cmocka_unit_test(test_loss_and_reconnect),
		cmocka_unit_test(test_peer_not_there_yet),
		cmocka_unit_test(test_dead_peer),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
