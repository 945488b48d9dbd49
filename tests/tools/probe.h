/*
 * qprobe, the integration tests' vehicle: the state of one run and the
 * helpers its command files share.  qprobe.c holds the command line,
 * provisioning and F3; probe_session.c holds F4, F5 and the vehicle's
 * side of the handover messages.
 */
#ifndef QROAM_PROBE_H
#define QROAM_PROBE_H

#include <stdint.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>

#include "conn.h"
#include "frame.h"
#include "result.h"
#include "topo.h"

#include "chip.h"

#define PROBE_RAN	0
#define PROBE_LOCAL	2
#define PROBE_MAXFILE	(16 * 1024 * 1024)

struct probe {
	const char		*p_store;
	const char		*p_topofile;
	const char		*p_ca;
	const char		*p_cert;
	const char		*p_key;
	int			 p_wait_ms;
	struct topo		 p_topo;
	sqlite3			*p_db;
	struct event_base	*p_base;
	SSL_CTX			*p_tls;
	struct chip_reg		 p_reg;
	EVP_PKEY		*p_pbv;

	/* Command options. */
	uint32_t		 o_m;
	const char		*o_vin;
	int			 o_rebind;
	const char		*o_tsp;
	const char		*o_vid;
	const char		*o_chip_id;
	const char		*o_as_tsp;
	int64_t			 o_time_offset;
	const char		*o_save;
	enum chip_mode		 o_mode;
	int			 o_has_index;
	uint32_t		 o_index;
	const char		*o_code;
	const char		*o_tamper;
	int			 o_keep_key;
	uint64_t		 o_count;
	int			 o_replay_last;
	int			 o_provision;
	const char		*o_file;
	/* telemetry: where the samples say the vehicle is. */
	int			 o_has_at;
	double			 o_lat;
	double			 o_lon;
	double			 o_heading;
	double			 o_speed;
	/* telemetry: answer M5 with this next TSP, or "decline". */
	const char		*o_m6;
	/* telemetry: wait for a HandoverReady without sending M6. */
	int			 o_await_ready;
};

/* Usage on stderr and a USAGE result. */
int	probe_usage(const char *why);
/* Load the registration of the chip store (Pbv, vehicle id, chip id). */
int	probe_load_reg(struct probe *);
/* Connect to a TSP's vehicle (plain) or provisioning (mTLS) endpoint. */
struct conn *probe_connect(struct probe *, const char *tsp_id, int provision);
/*
 * Encode msg as a frame, save it if asked, send it on a new connection
 * to the TSP of -T and wait for one reply.  1 with *reply filled, 0 if no
 * reply came, -1 on a local error.
 */
int	probe_exchange(struct probe *, uint32_t type, const ProtobufCMessage *msg,
	    struct frame *reply);

/* The commands of probe_session.c. */
int	probe_m3(struct probe *);
int	probe_telemetry(struct probe *);
int	probe_send(struct probe *);

#endif
