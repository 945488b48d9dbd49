/*
 * Service manager notifications (sd_notify(3)): READY=1 once the daemon
 * serves, RELOADING=1 around a SIGHUP reload, STOPPING=1 on shutdown, and
 * WATCHDOG=1 from an event-loop timer at half the WatchdogSec= of the unit,
 * so a stuck event loop is noticed.  Without NOTIFY_SOCKET (not started by
 * systemd) all of it does nothing.
 */
#ifndef QROAM_NOTIFY_H
#define QROAM_NOTIFY_H

#include <event2/event.h>

/* Start the watchdog timer if the unit asks for one. */
void	notify_init(struct event_base *);
/* READY=1 with a STATUS= line (printf-like, may be NULL). */
void	notify_ready(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
void	notify_reloading(void);
void	notify_stopping(void);
void	notify_free(void);

#endif
