/*
 * sd_notify(3) for the daemons run as Type=notify units, and the watchdog
 * keep-alive sent from the event loop itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

static struct event	*watchdog_ev;

/* Monotonic time in microseconds, as RELOADING=1 wants it. */
static unsigned long long
notify_monotonic_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000;
}

/* The loop is alive: tell the service manager. */
static void
notify_watchdog_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

void
notify_init(struct event_base *base)
{
	struct timeval	tv;
	uint64_t	usec;

	if (watchdog_ev != NULL || sd_watchdog_enabled(0, &usec) <= 0 ||
	    usec == 0)
		return;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	watchdog_ev = event_new(base, -1, EV_PERSIST, notify_watchdog_cb, NULL);
	if (watchdog_ev == NULL || event_add(watchdog_ev, &tv) == -1)
		fatalx("cannot start the watchdog timer");
	log_debug("watchdog keep-alive every %llu ms",
	    (unsigned long long)(usec / 1000));
}

void
notify_ready(const char *fmt, ...)
{
	va_list	 ap;
	char	 status[256];

	if (fmt == NULL) {
		sd_notify(0, "READY=1");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
notify_reloading(void)
{
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    notify_monotonic_us());
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void
notify_free(void)
{
	if (watchdog_ev != NULL)
		event_free(watchdog_ev);
	watchdog_ev = NULL;
}
