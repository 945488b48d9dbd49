/*
 * The one I/O layer: framed connections over libevent bufferevents, plain
 * or TLS.  Protocol code never touches sockets, SSL or bufferevents; it gets
 * whole decoded frames through one callback and sends messages with
 * conn_send().  A connection is freed only after its callbacks returned.
 * MT_PING is answered with MT_PONG here, and neither reaches the owner:
 * they only keep long-lived channels (chan.h) provably alive.
 */
#ifndef QROAM_CONN_H
#define QROAM_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>

#include "frame.h"

struct conn;
struct conn_barrier;

struct conn_cb {
	/* Client connections: the TCP (and TLS) handshake completed. */
	void	(*on_connected)(struct conn *, void *arg);
	/* One decoded frame; released by the caller after the return. */
	void	(*on_frame)(struct conn *, const struct frame *, void *arg);
	/* Called exactly once; the conn is freed after it returns. */
	void	(*on_close)(struct conn *, const char *reason, void *arg);
};

struct conn_opts {
	SSL_CTX		*co_tls;	/* NULL: plain TCP */
	size_t		 co_max_frame;	/* 0: FRAME_MAX_DEFAULT */
	int		 co_idle_ms;	/* close after this long without input; 0: never */
	int		 co_connect_ms;	/* connect + handshake timeout; 0: 10 s */
	/* TLS clients: close unless the server's certificate has this CN/role. */
	const char	*co_peer_cn;
	const char	*co_peer_role;
	/* Output waits for the store's commits (see conn_barrier_new). */
	struct conn_barrier *co_barrier;
	/* Listeners: share the port with other processes (SO_REUSEPORT). */
	int		 co_reuse_port;
};

/* Outgoing connection to host:port; NULL only if nothing could be started. */
struct conn *conn_connect(struct event_base *, const char *host, uint16_t port,
	    const struct conn_opts *, const struct conn_cb *, void *arg);

/* Queue one message; 0, or -1 (connection closing, encoding failed). */
int	conn_send(struct conn *, uint32_t type, uint64_t request_id,
	    const ProtobufCMessage *msg);
/* Queue a frame encoded already by frame_encode (of message type type). */
int	conn_send_encoded(struct conn *, uint32_t type, const uint8_t *buf,
	    size_t len);
/*
 * Queue a message or an encoded frame that depends on no commit: it
 * leaves at once, behind any output still held by the connection's
 * barrier.
 */
int	conn_send_now(struct conn *, uint32_t type, uint64_t request_id,
	    const ProtobufCMessage *msg);
int	conn_send_encoded_now(struct conn *, uint32_t type, const uint8_t *buf,
	    size_t len);
/* Queue a Status reply. */
int	conn_send_status(struct conn *, uint64_t request_id, int code,
	    const char *detail);
/* Queue raw bytes (test tools only). */
int	conn_send_raw(struct conn *, const void *, size_t);

/* Close after the output queue drained (or now if it cannot drain). */
void	conn_close(struct conn *, const char *reason);

void	conn_set_arg(struct conn *, void *arg);
/* "1.2.3.4:5678" */
const char *conn_peer_addr(const struct conn *);
/* Verified TLS peer; "" on plain connections. */
const char *conn_peer_cn(const struct conn *);
const char *conn_peer_role(const struct conn *);
int	conn_is_open(const struct conn *);
/*
 * Keep c's memory past its close, for an answer that comes later: sending
 * on a closed connection does nothing, conn_is_open tells.  Each conn_ref
 * is matched by one conn_unref.
 */
void	conn_ref(struct conn *);
void	conn_unref(struct conn *);

/*
 * Acknowledged means stored.  A barrier ties the connections given it
 * (conn_opts.co_barrier) to a store: written(arg) counts the store's
 * commits so far, and conn_barrier_release tells it how many are durable.
 * Output queued while commits are not yet durable is held in order and
 * leaves once every commit made before it was queued is durable, so an
 * answer never gets ahead of the state it reports.  Only
 * conn_send_encoded_now and the liveness probes skip the wait.
 */
struct conn_barrier *conn_barrier_new(uint64_t (*written)(void *), void *arg);
void	conn_barrier_release(struct conn_barrier *, uint64_t durable);
/* Free the barrier; output still held by its connections is dropped. */
void	conn_barrier_free(struct conn_barrier *);

/* A listening socket; each accepted connection gets cb and arg. */
struct listener;
struct listener *listener_new(struct event_base *, const char *host, uint16_t port,
	    const struct conn_opts *, const struct conn_cb *, void *arg);
void	listener_free(struct listener *);
/* Number of connections currently open from this listener. */
size_t	listener_nconns(const struct listener *);

/*
 * Blocking use for tools and start-up steps: open a connection and wait
 * for it to be ready, send, and wait for the next frame.  They run the
 * event base until done or timeout.
 */
struct conn *conn_open_sync(struct event_base *, const char *host, uint16_t port,
	    const struct conn_opts *, int timeout_ms, char *err, size_t errlen);
/* 0 and *f filled (release with frame_release), or -1 on timeout/close. */
int	conn_recv_sync(struct conn *, struct frame *f, int timeout_ms);
/* Close and free a sync connection now. */
void	conn_free_sync(struct conn *);

#endif
