/*
 * Blocking frame connections of the load generator (bconn.c): plain TCP
 * to a TSP's vehicle listener, requests queued and written together,
 * replies decoded from one input buffer.
 */
#ifndef QROAM_BCONN_H
#define QROAM_BCONN_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "frame.h"
#include "topo.h"

/* A blocking connection carrying frames. */
struct bconn {
	int		 bc_fd;
	uint8_t		*bc_in;
	size_t		 bc_inoff;	/* first unread byte */
	size_t		 bc_inlen;	/* end of the buffered bytes */
	size_t		 bc_incap;
	uint8_t		*bc_out;
	size_t		 bc_outlen;
	size_t		 bc_outcap;
};

/* Connect to ep with TCP_NODELAY; 0 or -1 (printed). */
int	bconn_open(struct bconn *, const struct endpoint *ep);
void	bconn_close(struct bconn *);
/* Queue a frame for bconn_flush(); 0 or -1. */
int	bconn_queue(struct bconn *, uint32_t type, uint64_t reqid,
	    const ProtobufCMessage *);
/* Queue bytes that are whole frames already; 0 or -1. */
int	bconn_queue_bytes(struct bconn *, const uint8_t *buf, size_t len);
/* Write everything queued; 0 or -1. */
int	bconn_flush(struct bconn *);
/* Queue and flush one frame. */
int	bconn_send(struct bconn *, uint32_t type, uint64_t reqid,
	    const ProtobufCMessage *);
/*
 * The next frame within timeout_ms (0: only what is already readable):
 * 1 with *f filled (frame_release() it), 0 on timeout, -1 when the peer
 * closed or sent garbage.
 */
int	bconn_recv(struct bconn *, struct frame *f, int timeout_ms);

#endif
