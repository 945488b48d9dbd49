/*
 * Unit tests of the connection layer on loopback: an echo server on a
 * listener, sync and async clients, frame limits, malformed input, close
 * semantics, and mutual TLS with certificates made at start-up.
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
#include <openssl/ssl.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "tls.h"

#define WAIT_MS		3000
#define MAXRIDS		512

enum sv_mode {
	SV_ECHO,		/* reply with the same Status */
	SV_REPLY_CLOSE,		/* reply, then close inside on_frame */
	SV_CLOSE,		/* close inside on_frame without a reply */
	SV_SILENT,		/* never reply */
};

/* The test server: what it saw, for the assertions. */
struct server {
	struct event_base	*sv_base;
	struct listener		*sv_l;
	uint16_t		 sv_port;
	enum sv_mode		 sv_mode;
	int			 sv_frames;
	int			 sv_closes;
	char			 sv_reason[160];
	char			 sv_cn[65];
	char			 sv_role[33];
	char			 sv_addr[64];
	uint64_t		 sv_rids[MAXRIDS];
	int			 sv_send_after_close;
};

static char	pkidir[64];
static char	ca_pem[128];

/* Run a shell command in the PKI directory; 0 or -1. */
static int
sh(const char *cmd)
{
	char	full[1024];

	snprintf(full, sizeof(full), "cd '%s' && %s >/dev/null 2>&1", pkidir, cmd);
	return system(full) == 0 ? 0 : -1;
}

/* A self-signed EC CA: CA.pem, CA.key. */
static int
make_ca(const char *ca)
{
	char	cmd[512];

	snprintf(cmd, sizeof(cmd),
	    "openssl ecparam -name prime256v1 -genkey -noout -out %1$s.key &&"
	    " openssl req -new -x509 -sha256 -days 2 -key %1$s.key"
	    " -subj '/CN=%1$s/OU=ca' -addext basicConstraints=critical,CA:TRUE"
	    " -addext keyUsage=critical,keyCertSign,cRLSign -out %1$s.pem", ca);
	return sh(cmd);
}

/* NAME.pem, NAME.key for CN=NAME OU=ROLE, signed by CA. */
static int
make_party(const char *ca, const char *name, const char *role)
{
	char	cmd[512];

	snprintf(cmd, sizeof(cmd),
	    "openssl ecparam -name prime256v1 -genkey -noout -out %2$s.key &&"
	    " openssl req -new -sha256 -key %2$s.key -subj '/CN=%2$s/OU=%3$s'"
	    " -out %2$s.csr &&"
	    " openssl x509 -req -sha256 -in %2$s.csr -CA %1$s.pem -CAkey %1$s.key"
	    " -CAcreateserial -extfile party.ext -days 2 -out %2$s.pem",
	    ca, name, role);
	return sh(cmd);
}

static int
group_setup(void **state)
{
	(void)state;
	log_init("test_conn", 0);
	/* As daemon_signals_new() does: a write to a reset peer is not fatal. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(pkidir, sizeof(pkidir), "/tmp/test_conn.XXXXXX");
	if (mkdtemp(pkidir) == NULL)
		return -1;
	if (sh("printf '%s\\n' basicConstraints=critical,CA:FALSE"
	    " keyUsage=critical,digitalSignature,keyAgreement"
	    " extendedKeyUsage=serverAuth,clientAuth"
	    " subjectAltName=DNS:localhost,IP:127.0.0.1 > party.ext") == -1 ||
	    make_ca("ca") == -1 || make_ca("rogue") == -1 ||
	    make_party("ca", "tsp-a", "tsp") == -1 ||
	    make_party("ca", "filler", "filler") == -1 ||
	    make_party("rogue", "intruder", "filler") == -1 ||
	    make_party("rogue", "fake-tsp", "tsp") == -1) {
		fprintf(stderr, "cannot make the test PKI in %s\n", pkidir);
		return -1;
	}
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", pkidir);
	return 0;
}

static int
group_teardown(void **state)
{
	char	cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pkidir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A loopback port nobody listens on right now. */
static uint16_t
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;
	uint16_t		port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
expire_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	*(int *)arg = 1;
}

/* Run base until *counter reaches want or ms pass; 0 if reached. */
static int
run_until(struct event_base *base, const int *counter, int want, int ms)
{
	struct event	*t;
	struct timeval	 tv;
	int		 expired = 0;

	t = evtimer_new(base, expire_cb, &expired);
	assert_non_null(t);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(t, &tv);
	while ((counter == NULL || *counter < want) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return counter != NULL && *counter >= want ? 0 : -1;
}

static void
run_for(struct event_base *base, int ms)
{
	run_until(base, NULL, 0, ms);
}

static void
sv_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct server	*sv = arg;
	Qroam__Status	*st;

	if (sv->sv_frames < MAXRIDS)
		sv->sv_rids[sv->sv_frames] = f->f_request_id;
	sv->sv_frames++;
	snprintf(sv->sv_cn, sizeof(sv->sv_cn), "%s", conn_peer_cn(c));
	snprintf(sv->sv_role, sizeof(sv->sv_role), "%s", conn_peer_role(c));
	snprintf(sv->sv_addr, sizeof(sv->sv_addr), "%s", conn_peer_addr(c));
	assert_true(conn_is_open(c));
	switch (sv->sv_mode) {
	case SV_SILENT:
		return;
	case SV_CLOSE:
		conn_close(c, "dropped by test");
		conn_close(c, "second close is ignored");
		assert_false(conn_is_open(c));
		sv->sv_send_after_close = conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__OK, NULL);
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
	if (sv->sv_mode == SV_REPLY_CLOSE) {
		conn_close(c, "closed after reply");
		conn_close(c, "second close is ignored");
		sv->sv_send_after_close = conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__OK, NULL);
	}
}

static void
sv_on_close(struct conn *c, const char *reason, void *arg)
{
	struct server	*sv = arg;

	(void)c;
	sv->sv_closes++;
	snprintf(sv->sv_reason, sizeof(sv->sv_reason), "%s", reason);
}

static const struct conn_cb sv_cb = {
	.on_frame = sv_on_frame,
	.on_close = sv_on_close,
};

/* Start a server on a fresh loopback port. */
static void
server_start(struct server *sv, SSL_CTX *tls, size_t max_frame, int idle_ms)
{
	struct conn_opts	o;

	memset(sv, 0, sizeof(*sv));
	sv->sv_base = event_base_new();
	assert_non_null(sv->sv_base);
	memset(&o, 0, sizeof(o));
	o.co_tls = tls;
	o.co_max_frame = max_frame;
	o.co_idle_ms = idle_ms;
	sv->sv_port = free_port();
	sv->sv_l = listener_new(sv->sv_base, "127.0.0.1", sv->sv_port, &o, &sv_cb,
	    sv);
	assert_non_null(sv->sv_l);
}

/* Free the listener, let deferred frees run, free the base. */
static void
server_stop(struct server *sv)
{
	listener_free(sv->sv_l);
	run_for(sv->sv_base, 20);
	event_base_free(sv->sv_base);
}

/* A plain sync client of sv. */
static struct conn *
client_open(struct server *sv, const struct conn_opts *o)
{
	struct conn_opts	 plain;
	struct conn		*c;
	char			 err[256];

	if (o == NULL) {
		memset(&plain, 0, sizeof(plain));
		o = &plain;
	}
	err[0] = '\0';
	c = conn_open_sync(sv->sv_base, "127.0.0.1", sv->sv_port, o, WAIT_MS,
	    err, sizeof(err));
	if (c == NULL)
		fail_msg("conn_open_sync: %s", err);
	return c;
}

static int
send_ping(struct conn *c, uint64_t rid, const char *detail)
{
	Qroam__Status	st = QROAM__STATUS__INIT;

	st.code = QROAM__STATUS_CODE__STALE;
	st.detail = (char *)detail;
	return conn_send(c, QROAM__MSG_TYPE__MT_STATUS, rid, &st.base);
}

/* Receive one echo and check its request id and detail. */
static void
expect_echo(struct conn *c, uint64_t rid, const char *detail)
{
	struct frame	 f;
	Qroam__Status	*st;

	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), 0);
	assert_int_equal(f.f_type, QROAM__MSG_TYPE__MT_STATUS);
	assert_true(f.f_request_id == rid);
	st = (Qroam__Status *)frame_unpack(&f, &qroam__status__descriptor);
	assert_non_null(st);
	assert_int_equal(st->code, QROAM__STATUS_CODE__STALE);
	assert_string_equal(st->detail, detail);
	qroam__status__free_unpacked(st, NULL);
	frame_release(&f);
}

static void
test_plain_echo(void **state)
{
	struct server	 sv;
	struct conn	*c;
	char		 want[64];

	(void)state;
	server_start(&sv, NULL, 0, 0);
	c = client_open(&sv, NULL);
	assert_true(conn_is_open(c));
	assert_string_equal(conn_peer_cn(c), "");
	assert_string_equal(conn_peer_role(c), "");
	snprintf(want, sizeof(want), "127.0.0.1:%u", sv.sv_port);
	assert_string_equal(conn_peer_addr(c), want);

	assert_int_equal(send_ping(c, 42, "ping"), 0);
	expect_echo(c, 42, "ping");
	assert_int_equal(send_ping(c, 43, "pong"), 0);
	expect_echo(c, 43, "pong");
	assert_int_equal(sv.sv_frames, 2);
	assert_string_equal(sv.sv_cn, "");
	assert_int_equal(strncmp(sv.sv_addr, "127.0.0.1:", 10), 0);
	assert_int_equal(listener_nconns(sv.sv_l), 1);

	conn_free_sync(c);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	assert_string_equal(sv.sv_reason, "connection closed by peer");
	assert_int_equal(listener_nconns(sv.sv_l), 0);
	run_for(sv.sv_base, 50);
	assert_int_equal(sv.sv_closes, 1);
	server_stop(&sv);
}

static void
test_many_frames_one_write(void **state)
{
	struct server	 sv;
	struct conn	*c;
	Qroam__Status	 st = QROAM__STATUS__INIT;
	uint8_t		*all, *one;
	size_t		 n = 0, len;
	char		 detail[32];
	int		 i, count = 300;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	c = client_open(&sv, NULL);
	all = malloc((size_t)count * 64);
	assert_non_null(all);
	st.code = QROAM__STATUS_CODE__STALE;
	for (i = 1; i <= count; i++) {
		snprintf(detail, sizeof(detail), "msg %d", i);
		st.detail = detail;
		assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, i,
		    &st.base, FRAME_MAX_DEFAULT, &one, &len), 0);
		assert_true(len <= 64);
		memcpy(all + n, one, len);
		n += len;
		free(one);
	}
	assert_int_equal(conn_send_raw(c, all, n), 0);
	free(all);
	for (i = 1; i <= count; i++) {
		snprintf(detail, sizeof(detail), "msg %d", i);
		expect_echo(c, i, detail);
	}
	assert_int_equal(sv.sv_frames, count);
	for (i = 0; i < count; i++)
		assert_true(sv.sv_rids[i] == (uint64_t)i + 1);
	conn_free_sync(c);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	server_stop(&sv);
}

/* One byte at a time: frames are reassembled across reads. */
static void
test_byte_by_byte(void **state)
{
	struct server	 sv;
	struct conn	*c;
	Qroam__Status	 st = QROAM__STATUS__INIT;
	uint8_t		*buf;
	size_t		 len, i;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	c = client_open(&sv, NULL);
	st.code = QROAM__STATUS_CODE__STALE;
	st.detail = "slow";
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, 9, &st.base,
	    FRAME_MAX_DEFAULT, &buf, &len), 0);
	for (i = 0; i + 1 < len; i++) {
		assert_int_equal(conn_send_raw(c, buf + i, 1), 0);
		run_for(sv.sv_base, 2);
		assert_int_equal(sv.sv_frames, 0);
	}
	assert_int_equal(conn_send_raw(c, buf + i, 1), 0);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_frames, 1, WAIT_MS), 0);
	free(buf);
	expect_echo(c, 9, "slow");
	conn_free_sync(c);
	server_stop(&sv);
}

static void
test_frame_too_big(void **state)
{
	struct server		 sv;
	struct conn		*c;
	struct conn_opts	 o;
	struct frame		 f;
	uint8_t			 raw[FRAME_HDRLEN + 1100];
	char			 detail[1100];

	(void)state;
	server_start(&sv, NULL, 1024, 0);
	c = client_open(&sv, NULL);
	/* A 1010-byte detail makes an envelope of exactly 1024: accepted. */
	memset(detail, 'd', sizeof(detail));
	detail[1010] = '\0';
	assert_int_equal(send_ping(c, 1, detail), 0);
	expect_echo(c, 1, detail);
	/* 1025 announced: closed from the header, body never read. */
	memset(raw, 0, sizeof(raw));
	raw[2] = 0x04;
	raw[3] = 0x01;
	assert_int_equal(conn_send_raw(c, raw, sizeof(raw)), 0);
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	assert_false(conn_is_open(c));
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	assert_string_equal(sv.sv_reason, "frame too big");
	assert_int_equal(sv.sv_frames, 1);
	conn_free_sync(c);
	run_for(sv.sv_base, 30);
	assert_int_equal(sv.sv_closes, 1);
	assert_int_equal(listener_nconns(sv.sv_l), 0);

	/* A sender with the same limit refuses to encode 1025 bytes... */
	memset(&o, 0, sizeof(o));
	o.co_max_frame = 1024;
	c = client_open(&sv, &o);
	detail[1010] = 'd';
	detail[1011] = '\0';
	assert_int_equal(send_ping(c, 1, detail), -1);
	/* ...and the refusal did not break the connection. */
	assert_true(conn_is_open(c));
	assert_int_equal(send_ping(c, 4, "after"), 0);
	expect_echo(c, 4, "after");
	conn_free_sync(c);
	server_stop(&sv);
}

/* Send raw bytes on a fresh connection and expect the server to drop it. */
static void
expect_malformed(struct server *sv, const uint8_t *raw, size_t len,
    int replies_before)
{
	struct conn	*c;
	struct frame	 f;
	int		 closes = sv->sv_closes, frames = sv->sv_frames, i;

	c = client_open(sv, NULL);
	assert_int_equal(conn_send_raw(c, raw, len), 0);
	for (i = 0; i < replies_before; i++) {
		assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), 0);
		frame_release(&f);
	}
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	assert_int_equal(run_until(sv->sv_base, &sv->sv_closes, closes + 1,
	    WAIT_MS), 0);
	assert_string_equal(sv->sv_reason, "malformed frame");
	assert_int_equal(sv->sv_frames, frames + replies_before);
	conn_free_sync(c);
	run_for(sv->sv_base, 20);
	assert_int_equal(sv->sv_closes, closes + 1);
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
	struct server	sv;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	expect_malformed(&sv, zero, sizeof(zero), 0);
	expect_malformed(&sv, garbage, sizeof(garbage), 0);
	expect_malformed(&sv, version, sizeof(version), 0);
	expect_malformed(&sv, unknown, sizeof(unknown), 0);
	expect_malformed(&sv, valid_then_bad, sizeof(valid_then_bad), 1);
	assert_int_equal(sv.sv_closes, 5);
	server_stop(&sv);
}

static void
test_close_inside_on_frame(void **state)
{
	struct server	 sv;
	struct conn	*c;
	struct frame	 f;
	Qroam__Status	 st = QROAM__STATUS__INIT;
	uint8_t		 all[256], *one;
	size_t		 n = 0, len;
	uint64_t	 rid;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	sv.sv_mode = SV_REPLY_CLOSE;
	c = client_open(&sv, NULL);
	/* Three frames in one write: only the first is handled. */
	st.code = QROAM__STATUS_CODE__STALE;
	st.detail = "x";
	for (rid = 1; rid <= 3; rid++) {
		assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, rid,
		    &st.base, FRAME_MAX_DEFAULT, &one, &len), 0);
		memcpy(all + n, one, len);
		n += len;
		free(one);
	}
	assert_int_equal(conn_send_raw(c, all, n), 0);
	/* The queued reply is flushed before the close. */
	expect_echo(c, 1, "x");
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	assert_string_equal(sv.sv_reason, "closed after reply");
	assert_int_equal(sv.sv_frames, 1);
	assert_int_equal(sv.sv_send_after_close, -1);
	conn_free_sync(c);
	run_for(sv.sv_base, 30);
	assert_int_equal(sv.sv_closes, 1);

	/* Close with nothing queued: immediate, still one on_close. */
	sv.sv_mode = SV_CLOSE;
	c = client_open(&sv, NULL);
	assert_int_equal(conn_send_raw(c, all, n), 0);
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 2, WAIT_MS), 0);
	assert_string_equal(sv.sv_reason, "dropped by test");
	assert_int_equal(sv.sv_frames, 2);
	assert_int_equal(sv.sv_send_after_close, -1);
	conn_free_sync(c);
	run_for(sv.sv_base, 30);
	assert_int_equal(sv.sv_closes, 2);
	assert_int_equal(listener_nconns(sv.sv_l), 0);
	server_stop(&sv);
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
	assert_int_equal(send_ping(c, 100 + cl->cl_connected, "async"), 0);
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
	struct server		 sv;
	struct client		 cl;
	struct conn_opts	 o;
	struct conn		*c;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	memset(&cl, 0, sizeof(cl));
	memset(&o, 0, sizeof(o));
	cl.cl_close_in_frame = 1;
	c = conn_connect(sv.sv_base, "127.0.0.1", sv.sv_port, &o, &cl_cb, &cl);
	assert_non_null(c);
	/* Sent while still connecting: queued and delivered. */
	assert_int_equal(send_ping(c, 101, "early"), 0);
	assert_int_equal(run_until(sv.sv_base, &cl.cl_closes, 1, WAIT_MS), 0);
	assert_int_equal(cl.cl_connected, 1);
	assert_int_equal(cl.cl_frames, 1);
	assert_string_equal(cl.cl_reason, "client done");
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	run_for(sv.sv_base, 50);
	assert_int_equal(cl.cl_closes, 1);
	assert_int_equal(sv.sv_closes, 1);
	assert_int_equal(sv.sv_rids[0], 101);
	server_stop(&sv);
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
	port = free_port();
	err[0] = '\0';
	assert_null(conn_open_sync(base, "127.0.0.1", port, &o, WAIT_MS, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "127.0.0.1"));

	memset(&cl, 0, sizeof(cl));
	c = conn_connect(base, "127.0.0.1", port, &o, &cl_cb, &cl);
	assert_non_null(c);
	assert_int_equal(run_until(base, &cl.cl_closes, 1, WAIT_MS), 0);
	run_for(base, 30);
	assert_int_equal(cl.cl_closes, 1);
	assert_int_equal(cl.cl_connected, 0);
	assert_true(cl.cl_reason[0] != '\0');
	event_base_free(base);
}

static void
test_idle_timeout(void **state)
{
	struct server	 sv;
	struct conn	*c;
	struct frame	 f;

	(void)state;
	server_start(&sv, NULL, 0, 300);
	c = client_open(&sv, NULL);
	/* Activity keeps it open... */
	assert_int_equal(send_ping(c, 1, "a"), 0);
	expect_echo(c, 1, "a");
	/* ...silence closes it. */
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	assert_string_equal(sv.sv_reason, "idle timeout");
	conn_free_sync(c);
	server_stop(&sv);
}

static void
test_recv_timeout(void **state)
{
	struct server	 sv;
	struct conn	*c;
	struct frame	 f;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	sv.sv_mode = SV_SILENT;
	c = client_open(&sv, NULL);
	assert_int_equal(send_ping(c, 1, "anyone?"), 0);
	assert_int_equal(conn_recv_sync(c, &f, 150), -1);
	/* A timeout is not a close. */
	assert_true(conn_is_open(c));
	assert_int_equal(sv.sv_frames, 1);
	assert_int_equal(sv.sv_closes, 0);
	sv.sv_mode = SV_ECHO;
	assert_int_equal(send_ping(c, 2, "now"), 0);
	expect_echo(c, 2, "now");
	conn_free_sync(c);
	server_stop(&sv);
}

static void
test_listener_free_closes_conns(void **state)
{
	struct server	 sv;
	struct conn	*c1, *c2;
	struct frame	 f;

	(void)state;
	server_start(&sv, NULL, 0, 0);
	c1 = client_open(&sv, NULL);
	c2 = client_open(&sv, NULL);
	assert_int_equal(send_ping(c1, 1, "one"), 0);
	expect_echo(c1, 1, "one");
	assert_int_equal(send_ping(c2, 2, "two"), 0);
	expect_echo(c2, 2, "two");
	assert_int_equal(listener_nconns(sv.sv_l), 2);
	listener_free(sv.sv_l);
	assert_int_equal(sv.sv_closes, 2);
	assert_string_equal(sv.sv_reason, "shutdown");
	assert_int_equal(conn_recv_sync(c1, &f, WAIT_MS), -1);
	assert_int_equal(conn_recv_sync(c2, &f, WAIT_MS), -1);
	conn_free_sync(c1);
	conn_free_sync(c2);
	run_for(sv.sv_base, 20);
	assert_int_equal(sv.sv_closes, 2);
	event_base_free(sv.sv_base);
}

/* ---- TLS ---- */

/* A context trusting our CA with the certificate of name. */
static SSL_CTX *
ctx_for(const char *name, int server)
{
	char	 cert[128], key[128];
	SSL_CTX	*ctx;

	snprintf(cert, sizeof(cert), "%s/%s.pem", pkidir, name);
	snprintf(key, sizeof(key), "%s/%s.key", pkidir, name);
	ctx = server ? tls_server_ctx(ca_pem, cert, key) :
	    tls_client_ctx(ca_pem, cert, key);
	assert_non_null(ctx);
	return ctx;
}

static void
test_tls_mutual(void **state)
{
	struct server		 sv;
	struct conn_opts	 o;
	struct conn		*c;
	SSL_CTX			*sctx, *cctx;

	(void)state;
	sctx = ctx_for("tsp-a", 1);
	cctx = ctx_for("filler", 0);
	server_start(&sv, sctx, 0, 0);
	memset(&o, 0, sizeof(o));
	o.co_tls = cctx;
	o.co_peer_cn = "tsp-a";
	o.co_peer_role = "tsp";
	c = client_open(&sv, &o);
	assert_string_equal(conn_peer_cn(c), "tsp-a");
	assert_string_equal(conn_peer_role(c), "tsp");
	assert_int_equal(send_ping(c, 77, "over tls"), 0);
	expect_echo(c, 77, "over tls");
	assert_string_equal(sv.sv_cn, "filler");
	assert_string_equal(sv.sv_role, "filler");
	/* Many frames in one TLS write still arrive in order. */
	{
		int	i;

		for (i = 0; i < 50; i++)
			assert_int_equal(send_ping(c, 1000 + i, "burst"), 0);
		for (i = 0; i < 50; i++)
			expect_echo(c, 1000 + i, "burst");
	}
	conn_free_sync(c);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	server_stop(&sv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* The client gets no frame through; the server never sees one. */
static void
expect_tls_refused(struct server *sv, const struct conn_opts *o,
    const char *errpart)
{
	struct conn	*c;
	struct frame	 f;
	char		 err[256];
	int		 closes = sv->sv_closes;

	err[0] = '\0';
	c = conn_open_sync(sv->sv_base, "127.0.0.1", sv->sv_port, o, WAIT_MS,
	    err, sizeof(err));
	if (c != NULL) {
		/* TLS 1.3: the client may finish before the server refuses. */
		assert_null(errpart);
		(void)send_ping(c, 5, "should not arrive");
		assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
		assert_false(conn_is_open(c));
		conn_free_sync(c);
	} else if (errpart != NULL)
		assert_non_null(strstr(err, errpart));
	assert_int_equal(run_until(sv->sv_base, &sv->sv_closes, closes + 1,
	    WAIT_MS), 0);
	run_for(sv->sv_base, 30);
	assert_int_equal(sv->sv_closes, closes + 1);
	assert_int_equal(sv->sv_frames, 0);
	assert_int_equal(listener_nconns(sv->sv_l), 0);
}

/* A server with server_cert refuses (or is refused by) a client on cctx. */
static void
tls_refusal(const char *server_cert, SSL_CTX *cctx, const char *errpart)
{
	struct server		 sv;
	struct conn_opts	 o;
	SSL_CTX			*sctx;

	sctx = ctx_for(server_cert, 1);
	server_start(&sv, sctx, 0, 0);
	memset(&o, 0, sizeof(o));
	o.co_tls = cctx;
	expect_tls_refused(&sv, &o, errpart);
	server_stop(&sv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void
test_tls_client_without_cert(void **state)
{
	SSL_CTX	*cctx;

	(void)state;
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, ca_pem, NULL), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	tls_refusal("tsp-a", cctx, NULL);
}

static void
test_tls_client_from_other_ca(void **state)
{
	(void)state;
	/* Trusts our CA for the server, but its own cert is the rogue CA's. */
	tls_refusal("tsp-a", ctx_for("intruder", 0), NULL);
}

static void
test_tls_server_from_other_ca(void **state)
{
	(void)state;
	/* The server trusts our CA but presents a rogue certificate. */
	tls_refusal("fake-tsp", ctx_for("filler", 0), "certificate verify failed");
}

static void
test_tls_peer_mismatch(void **state)
{
	struct server		 sv;
	struct conn_opts	 o;
	SSL_CTX			*sctx, *cctx;

	(void)state;
	sctx = ctx_for("tsp-a", 1);
	cctx = ctx_for("filler", 0);
	server_start(&sv, sctx, 0, 0);
	memset(&o, 0, sizeof(o));
	o.co_tls = cctx;
	o.co_peer_cn = "tsp-b";
	expect_tls_refused(&sv, &o, "unexpected peer certificate CN");
	o.co_peer_cn = "tsp-a";
	o.co_peer_role = "registrar";
	expect_tls_refused(&sv, &o, "unexpected peer certificate role");
	/* The right names still work on the same server. */
	o.co_peer_role = "tsp";
	{
		struct conn	*c = client_open(&sv, &o);

		assert_int_equal(send_ping(c, 8, "right one"), 0);
		expect_echo(c, 8, "right one");
		conn_free_sync(c);
	}
	server_stop(&sv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void
test_tls_plain_client(void **state)
{
	struct server	 sv;
	SSL_CTX		*sctx;
	struct conn	*c;
	struct frame	 f;

	(void)state;
	sctx = ctx_for("tsp-a", 1);
	server_start(&sv, sctx, 0, 0);
	/* Plain TCP to a TLS listener: the handshake fails, nothing delivered. */
	c = client_open(&sv, NULL);
	assert_int_equal(send_ping(c, 1, "cleartext"), 0);
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	conn_free_sync(c);
	assert_int_equal(run_until(sv.sv_base, &sv.sv_closes, 1, WAIT_MS), 0);
	assert_int_equal(sv.sv_frames, 0);
	server_stop(&sv);
	SSL_CTX_free(sctx);
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
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_recv_timeout),
		cmocka_unit_test(test_listener_free_closes_conns),
		cmocka_unit_test(test_tls_mutual),
		cmocka_unit_test(test_tls_client_without_cert),
		cmocka_unit_test(test_tls_client_from_other_ca),
		cmocka_unit_test(test_tls_server_from_other_ca),
		cmocka_unit_test(test_tls_peer_mismatch),
		cmocka_unit_test(test_tls_plain_client),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
