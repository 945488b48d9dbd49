/*
 * An echo server on a loopback listener and sync clients that ping it,
 * shared by the connection tests (prefix echo_).  The server answers each
 * Status with the same Status and records what it saw; the helpers fail
 * the running test with cmocka assertions.
 */
#ifndef QROAM_ECHO_H
#define QROAM_ECHO_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "conn.h"

#define ECHO_WAIT_MS	3000
#define ECHO_MAXRIDS	512

enum echo_mode {
	ECHO_REPLY,		/* reply with the same Status */
	ECHO_REPLY_CLOSE,	/* reply, then close inside on_frame */
	ECHO_CLOSE,		/* close inside on_frame without a reply */
	ECHO_SILENT,		/* never reply */
};

/* The test server: what it saw, for the assertions. */
struct echo_server {
	struct event_base	*es_base;
	struct listener		*es_l;
	SSL_CTX			*es_tls;
	uint16_t		 es_port;
	enum echo_mode		 es_mode;
	int			 es_frames;
	int			 es_closes;
	char			 es_reason[160];
	char			 es_cn[65];
	char			 es_role[33];
	char			 es_addr[64];
	uint64_t		 es_rids[ECHO_MAXRIDS];
	int			 es_send_after_close;
};

/* Start es on a fresh loopback port and base: plain, or TLS on tls. */
void		 echo_start(struct echo_server *es, SSL_CTX *tls,
		    size_t max_frame, int idle_ms);

/* Free the listener, let deferred frees run, free the base and tls. */
void		 echo_stop(struct echo_server *es);

/* A sync client of es with options o (NULL: plain); fails if refused. */
struct conn	*echo_client(struct echo_server *es, const struct conn_opts *o);

/* Send a Status ping with request id rid; conn_send()'s result. */
int		 echo_send(struct conn *c, uint64_t rid, const char *detail);

/* Append the frame echo_send() would send to the *n bytes in buf. */
void		 echo_append(uint8_t *buf, size_t size, size_t *n, uint64_t rid,
		    const char *detail);

/* Receive one echo on c and check its request id and detail. */
void		 echo_expect(struct conn *c, uint64_t rid, const char *detail);

/* Send a ping on c and receive its echo. */
void		 echo_roundtrip(struct conn *c, uint64_t rid,
		    const char *detail);

/* Run es's loop until it has counted closes closes in all. */
void		 echo_wait_closes(struct echo_server *es, int closes);

/* Run es's loop a while: it has still counted exactly closes closes. */
void		 echo_expect_closes(struct echo_server *es, int closes);

/*
 * es drops c: the client sees the close, es counts it as its closes-th,
 * for reason, after frames frames in all, and freeing c adds no close.
 */
void		 echo_expect_dropped(struct echo_server *es, struct conn *c,
		    int closes, const char *reason, int frames);

#endif /* QROAM_ECHO_H */
