/*
 * Blocking frame connections for the load generator: plain TCP with
 * Nagle off, an output buffer so that a window of requests leaves in one
 * write, and an input buffer read in large chunks and decoded in place.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bconn.h"

#define BCONN_READ	65536

/* Monotonic clock in microseconds, for the deadline of a reply. */
static double
bconn_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int
bconn_open(struct bconn *bc, const struct endpoint *ep)
{
	struct addrinfo	 hints, *res, *ai;
	char		 port[8];
	int		 fd = -1, on = 1, e;

	memset(bc, 0, sizeof(*bc));
	bc->bc_fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", ep->ep_port);
	if ((e = getaddrinfo(ep->ep_host, port, &hints, &res)) != 0) {
		fprintf(stderr, "qbench: %s: %s\n", ep->ep_host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype, 0)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		fprintf(stderr, "qbench: connect %s:%u: %s\n", ep->ep_host,
		    ep->ep_port, strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	bc->bc_fd = fd;
	return 0;
}

void
bconn_close(struct bconn *bc)
{
	if (bc->bc_fd != -1)
		close(bc->bc_fd);
	free(bc->bc_in);
	free(bc->bc_out);
	memset(bc, 0, sizeof(*bc));
	bc->bc_fd = -1;
}

/* Make room for len more bytes in a buffer; 0 or -1. */
static int
bconn_grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t	*nb;
	size_t	 ncap;

	if (need <= *cap)
		return 0;
	for (ncap = *cap ? *cap : 4096; ncap < need; ncap *= 2)
		;
	if ((nb = realloc(*buf, ncap)) == NULL)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

int
bconn_queue(struct bconn *bc, uint32_t type, uint64_t reqid,
    const ProtobufCMessage *msg)
{
	uint8_t	*buf;
	size_t	 len;

	if (frame_encode(type, reqid, msg, FRAME_MAX_DEFAULT, &buf, &len) == -1)
		return -1;
	if (bconn_grow(&bc->bc_out, &bc->bc_outcap, bc->bc_outlen + len) == -1) {
		free(buf);
		return -1;
	}
	memcpy(bc->bc_out + bc->bc_outlen, buf, len);
	bc->bc_outlen += len;
	free(buf);
	return 0;
}

int
bconn_queue_bytes(struct bconn *bc, const uint8_t *buf, size_t len)
{
	if (bconn_grow(&bc->bc_out, &bc->bc_outcap, bc->bc_outlen + len) == -1)
		return -1;
	memcpy(bc->bc_out + bc->bc_outlen, buf, len);
	bc->bc_outlen += len;
	return 0;
}

int
bconn_flush(struct bconn *bc)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < bc->bc_outlen) {
		n = write(bc->bc_fd, bc->bc_out + off, bc->bc_outlen - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	bc->bc_outlen = 0;
	return 0;
}

int
bconn_send(struct bconn *bc, uint32_t type, uint64_t reqid,
    const ProtobufCMessage *msg)
{
	if (bconn_queue(bc, type, reqid, msg) == -1)
		return -1;
	return bconn_flush(bc);
}

/* Read what the socket has, waiting up to timeout_ms; 1, 0 or -1. */
static int
bconn_fill(struct bconn *bc, int timeout_ms)
{
	struct pollfd	pfd;
	ssize_t		n;
	int		r;

	if (bc->bc_inoff > 0 && bc->bc_inoff == bc->bc_inlen)
		bc->bc_inoff = bc->bc_inlen = 0;
	if (bc->bc_inoff > bc->bc_incap / 2) {
		memmove(bc->bc_in, bc->bc_in + bc->bc_inoff,
		    bc->bc_inlen - bc->bc_inoff);
		bc->bc_inlen -= bc->bc_inoff;
		bc->bc_inoff = 0;
	}
	if (bconn_grow(&bc->bc_in, &bc->bc_incap, bc->bc_inlen +
	    BCONN_READ) == -1)
		return -1;
	pfd.fd = bc->bc_fd;
	pfd.events = POLLIN;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r == -1 && errno == EINTR);
	if (r <= 0)
		return r;
	n = read(bc->bc_fd, bc->bc_in + bc->bc_inlen, BCONN_READ);
	if (n <= 0)
		return -1;
	bc->bc_inlen += (size_t)n;
	return 1;
}

int
bconn_recv(struct bconn *bc, struct frame *f, int timeout_ms)
{
	enum frame_result	 fr;
	size_t			 used;
	double			 deadline = bconn_now_us() + timeout_ms * 1000.0;
	int			 left, r;

	for (;;) {
		fr = FRAME_NEED_MORE;
		if (bc->bc_inlen - bc->bc_inoff >= FRAME_HDRLEN)
			fr = frame_decode(bc->bc_in + bc->bc_inoff,
			    bc->bc_inlen - bc->bc_inoff, FRAME_MAX_DEFAULT, f,
			    &used);
		if (fr == FRAME_OK) {
			bc->bc_inoff += used;
			return 1;
		}
		if (fr != FRAME_NEED_MORE)
			return -1;
		left = (int)((deadline - bconn_now_us()) / 1000.0);
		if (left < 0)
			left = 0;
		if ((r = bconn_fill(bc, left)) <= 0)
			return r;
	}
}
