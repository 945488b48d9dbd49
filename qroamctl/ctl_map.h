/*
 * qroamctl map: a live map of the deployment in the browser.  ctl_map.c
 * is the HTTP server (the page's static files and /map.json),
 * ctl_mappoll.c polls every daemon's admin endpoint once a second,
 * ctl_mapview.c assembles /map.json from the topology and the latest
 * answers.
 */
#ifndef QROAMCTL_CTL_MAP_H
#define QROAMCTL_CTL_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>

#include "topo.h"

#include "ctl.h"

/* The views polled, one snapshot each. */
enum map_view {
	MV_STATUS,
	MV_METRICS,	/* parsed: {refusals: {reason: n}, handovers: {...}} */
	MV_HANDOVERS,
	MV_ENDED,
	MV_VEHICLES,
	MV_POOLS,
	MV_COUNT
};

struct map_daemon;

/*
 * One request in flight: which daemon, which view.  A daemon has at most
 * one request out per view, so the slots live in the daemon and nothing
 * is left to free when a connection is torn down with requests pending.
 */
struct map_req {
	struct map_daemon	*mr_md;
	enum map_view		 mr_view;
};

struct map_daemon {
	const struct ctl_daemon		*md_d;
	struct evhttp_connection	*md_conn;	/* kept alive */
	int				 md_pending;	/* requests out */
	char				 md_kind[16];	/* "tspd", ... */
	char				 md_id[64];
	int				 md_up;		/* /status answered */
	char				 md_err[64];	/* why it is down */
	uint64_t			 md_seen_ms;	/* last answer */
	json_t				*md_views[MV_COUNT];
	struct map_req			 md_reqs[MV_COUNT];
};

struct map {
	struct map_daemon	*m_daemons;
	size_t			 m_ndaemons;
	struct event		*m_tick;
	uint64_t		 m_rounds;
	struct topo		 m_topo;
	int			 m_has_topo;
};

/* ctl_mappoll.c */
/* Start polling c's daemons once a second on c's loop; 0 or -1. */
int	map_poll_start(struct map *, struct ctl *c);
void	map_poll_stop(struct map *);
/* Forget a daemon's snapshots (it is down). */
void	map_daemon_clear(struct map_daemon *);
/* Wall-clock time in unix ms. */
uint64_t map_now_ms(void);

/* ctl_mapview.c */
/* The document of /map.json, built from the latest snapshots. */
json_t	*map_view(const struct map *);

#endif
