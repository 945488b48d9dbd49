/*
 * vehicled's operations interface (ops.c): the admin endpoint's /status
 * callback, the chip keys left in the metrics, and the settings a reload
 * cannot change.
 */
#ifndef VEHICLED_OPS_H
#define VEHICLED_OPS_H

#include <jansson.h>

#include "config.h"

struct vfleet;

/* Register the metrics and the keys-left collector of fleet f. */
void	vops_init(struct vfleet *f);
void	vops_free(struct vfleet *f);
/* admin_status_cb; arg is the struct vfleet. */
json_t	*vops_status(void *arg, const char *what, json_t *obj);

/*
 * Log each vehicled setting that differs between the running and the
 * next configuration but changes on restart only; their number.
 */
int	vops_restart_only(const struct vconf *run, const struct vconf *next);

#endif
