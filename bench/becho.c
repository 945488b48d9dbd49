/*
 * qbench echo: the baseline of the telemetry figure.  A bare libevent
 * server on its own thread (pinned to CPU 0 when there are two) reads
 * frames as tspd does, asking the frame module for each frame's size,
 * and writes every whole frame back untouched: no decoding, no crypto,
 * no store.  The client (CPU 1) keeps a window of 256-byte frames in
 * flight on one connection, as the telemetry measurement does, and
 * counts the frames that come back.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"

#include "qbench.h"

#define QB_ECHO_FRAME	256	/* bytes on the wire per message */

/* Write back every whole frame that has arrived. */
static void
qb_echo_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer		*out = bufferevent_get_output(bev);
	uint8_t			 hdr[FRAME_HDRLEN];
	size_t			 size;

	(void)arg;
	while (evbuffer_copyout(in, hdr, sizeof(hdr)) == sizeof(hdr)) {
		if (frame_size(hdr, sizeof(hdr), FRAME_MAX_DEFAULT, &size) !=
		    FRAME_OK) {
			bufferevent_free(bev);
			return;
		}
		if (evbuffer_get_length(in) < size)
			return;
		evbuffer_remove_buffer(in, out, size);
	}
}

static void
qb_echo_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void
qb_echo_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent	*bev;
	int			 on = 1;

	(void)sa;
	(void)salen;
	(void)arg;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, qb_echo_read, NULL, qb_echo_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Pin the calling thread to one CPU when the machine has more than one. */
static void
qb_pin(int cpu)
{
	cpu_set_t	set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *
qb_echo_loop(void *arg)
{
	struct event_base	*base = arg;

	qb_pin(0);
	event_base_dispatch(base);
	return NULL;
}

/* Start the libevent echo server on a thread; its port, or 0. */
static uint16_t
qb_levecho_start(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct event_base	*base;
	struct evconnlistener	*l;
	pthread_t		 th;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((base = event_base_new()) == NULL)
		return 0;
	l = evconnlistener_new_bind(base, qb_echo_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL || getsockname(evconnlistener_get_fd(l),
	    (struct sockaddr *)&sin, &len) == -1) {
		fprintf(stderr, "qbench: echo server: %s\n", strerror(errno));
		return 0;
	}
	if (pthread_create(&th, NULL, qb_echo_loop, base) != 0)
		return 0;
	pthread_detach(th);
	return ntohs(sin.sin_port);
}

/*
 * A frame of exactly QB_ECHO_FRAME bytes in buf (the request id's varint
 * takes up the byte that the payload length's varint can leave); 0 or -1.
 */
static int
qb_echo_frame(uint8_t **buf, size_t *len)
{
	static const uint64_t	 reqids[] = { 1, 300, 70000 };
	uint8_t			 payload[QB_ECHO_FRAME];
	size_t			 plen, r;

	memset(payload, 0x5a, sizeof(payload));
	for (r = 0; r < sizeof(reqids) / sizeof(reqids[0]); r++)
		for (plen = QB_ECHO_FRAME - 24; plen < QB_ECHO_FRAME; plen++) {
			if (frame_encode_payload(QROAM__MSG_TYPE__MT_SESSION_MSG,
			    reqids[r], payload, plen, FRAME_MAX_DEFAULT, buf,
			    len) == -1)
				return -1;
			if (*len == QB_ECHO_FRAME)
				return 0;
			free(*buf);
			if (*len > QB_ECHO_FRAME)
				break;
		}
	return -1;
}

/*
 * echo: frames pipelined to the bare libevent echo server, window W, for
 * s seconds; the rate counts frames received back whole.
 */
int
qb_cmd_echo(struct qbench *q)
{
	struct endpoint	 ep;
	struct bconn	 bc;
	struct frame	 f;
	uint8_t		*msg;
	size_t		 msglen;
	uint64_t	 sent = 0, got = 0, W;
	double		 t0, stop, end;
	uint16_t	 port;
	int		 r;

	W = q->q_window ? q->q_window : 256;
	if ((port = qb_levecho_start()) == 0 || qb_echo_frame(&msg,
	    &msglen) == -1)
		return result_print(QB_LOCAL, "ERROR", "reason=setup");
	qb_pin(1);
	memset(&ep, 0, sizeof(ep));
	snprintf(ep.ep_host, sizeof(ep.ep_host), "127.0.0.1");
	ep.ep_port = port;
	if (bconn_open(&bc, &ep) == -1) {
		free(msg);
		return result_print(QB_LOCAL, "ERROR", "reason=connect");
	}
	t0 = end = qb_now_us();
	stop = t0 + (q->q_seconds > 0 ? q->q_seconds : 2) * 1e6;
	while (got < sent || qb_now_us() < stop) {
		while (sent - got < W && qb_now_us() < stop) {
			if (bconn_queue_bytes(&bc, msg, msglen) == -1)
				fatalx("echo: out of memory");
			sent++;
		}
		if (bconn_flush(&bc) == -1)
			break;
		/* Everything that has come back, waiting only for the first. */
		if ((r = bconn_recv(&bc, &f, QB_WAIT_MS)) != 1)
			break;
		do {
			frame_release(&f);
			got++;
		} while (bconn_recv(&bc, &f, 0) == 1);
		end = qb_now_us();
	}
	bconn_close(&bc);
	free(msg);
	return result_print(QB_RAN, got == sent ? "OK" : "FAILED", "window=%llu"
	    " frame_bytes=%zu sent=%llu echoed=%llu seconds=%.3f"
	    " per_second=%.1f", (unsigned long long)W, msglen,
	    (unsigned long long)sent, (unsigned long long)got,
	    (end - t0) / 1e6, end > t0 ? (double)got / ((end - t0) / 1e6) :
	    0.0);
}
