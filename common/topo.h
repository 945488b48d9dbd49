/*
 * Deployment topology (PROTOCOL section 9), a conf(5)-style file:
 *
 *   filler    HOST:PORT
 *   registrar HOST:PORT
 *   sched     HOST:PORT
 *   qkd       HOST:PORT
 *   kmp       HOST:PORT
 *   kmp_tls   HOST:PORT
 *   tsp ID vehicle HOST:PORT provision HOST:PORT
 *   region ID LAT,LON LAT,LON LAT,LON ...
 */
#ifndef QROAM_TOPO_H
#define QROAM_TOPO_H

#include <stddef.h>
#include <stdint.h>

#include "geo.h"

#define TOPO_MAXTSP	64

struct endpoint {
	char		ep_host[256];
	uint16_t	ep_port;	/* 0: not configured */
};

struct topo_tsp {
	char		 tt_id[33];
	struct endpoint	 tt_vehicle;
	struct endpoint	 tt_provision;
	struct geo_point *tt_region;
	size_t		 tt_nregion;
};

struct topo {
	struct endpoint	 t_filler;
	struct endpoint	 t_registrar;
	struct endpoint	 t_sched;
	struct endpoint	 t_qkd;
	struct endpoint	 t_kmp;		/* kmpd: vehicles, plain TCP */
	struct endpoint	 t_kmp_tls;	/* kmpd: cloud encryptors, mutual TLS */
	struct topo_tsp	 t_tsps[TOPO_MAXTSP];
	size_t		 t_ntsps;
};

/* Parse path into t; errors reported as file:line: message; 0 or -1. */
int	topo_load(const char *path, struct topo *t);
void	topo_free(struct topo *t);
/*
 * 0 if t gives the address of role (filler, registrar, sched, qkd, kmp or
 * kmp_tls), else -1 after "path: no ROLE endpoint" on stderr.
 */
int	topo_need(const struct topo *t, const char *path, const char *role);
const struct topo_tsp *topo_tsp(const struct topo *, const char *id);
/* The first TSP whose region contains p, or NULL. */
const struct topo_tsp *topo_tsp_at(const struct topo *, struct geo_point p);
/*
 * The first part in which two topologies differ, written to buf ("the
 * filler address", "the tsp list", "the region of tsp tsp-a", ...) and
 * returned; NULL if they are the same.
 */
const char *topo_differs(const struct topo *, const struct topo *,
	    char *buf, size_t len);
/*
 * On reload: log that the contents of the topology changed and take
 * effect on restart if next differs from run; 1 if so, else 0.
 */
int	topo_reload_restart_only(const struct topo *run,
	    const struct topo *next);

/* 1 if two endpoints differ in host or port. */
int	topo_endpoint_differs(const struct endpoint *, const struct endpoint *);

#endif
