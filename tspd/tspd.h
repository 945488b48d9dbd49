/*
 * tspd: the regional cloud (TSP).  State shared by its parts and their
 * entry points; each protocol step is implemented in the file named after
 * it (provision.c: F1/F2, auth.c: F3, session.c: F4/F5, vehicle.c: the
 * vehicle listener, handover*.c and region.c: F6).
 */
#ifndef TSPD_H
#define TSPD_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "frame.h"
#include "topo.h"

#include "config.h"
#include "db.h"
#include "handover.h"

struct tspd {
	struct event_base	*t_base;
	struct tspd_config	 t_conf;
	const char		*t_conf_path;
	struct topo		 t_topo;
	const struct topo_tsp	*t_self;	/* this TSP in t_topo */
	const char		*t_id;		/* tsp_id */
	struct tspdb		*t_db;
	SSL_CTX			*t_tls;
	SSL_CTX			*t_tls_client;	/* schedd, TSPs, the KME */
	struct keysrc		*t_keysrc;	/* NULL: handover disabled */
	struct listener		*t_vehicle;
	struct listener		*t_provision;
	struct tspd_offers	*t_offers;	/* handover_offer.c */
	struct tspd_ho		*t_ho;		/* handover.c */
	struct tspd_hin		*t_hin;		/* handover_in.c */
	struct tspd_vtab	*t_vtab;	/* vehicle.c */
};

/* Connection callbacks of the listeners; arg is the struct tspd. */
extern const struct conn_cb tspd_vehicle_cb;
extern const struct conn_cb tspd_provision_cb;

/* F3: an M4 on a vehicle connection. */
void	tspd_auth_m4(struct tspd *, struct conn *, const struct frame *);
/* F4: an M3 on a vehicle connection. */
void	tspd_session_m3(struct tspd *, struct conn *, const struct frame *);
/* F5: a SessionMsg on a vehicle connection. */
void	tspd_session_msg(struct tspd *, struct conn *, const struct frame *);
/* Check the values of a Telemetry; NULL if fine, else the reason. */
const char *tspd_telemetry_check(const Qroam__Telemetry *);

/* The connection a vehicle last spoke on (vehicle.c); NULL if none. */
void	tspd_vehicle_bind(struct tspd *, const char *vid, struct conn *);
struct conn *tspd_vehicle_conn(struct tspd *, const char *vid);
void	tspd_vehicle_init(struct tspd *);
void	tspd_vehicle_free(struct tspd *);

#endif
