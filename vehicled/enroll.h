/*
 * Enrolment on the event loop: fill the chip (F1) and register the vehicle
 * (F2) at start-up, and F9's refill with re-registration, for every
 * vehicle of the process over the same provisioning channels (provchan.h):
 * one connection to the filler and one to the registrar per credential,
 * each carrying the requests of many vehicles at once.  Nothing waits for
 * a reply: a vehicle's enrolment is a small state machine whose steps run
 * when its replies come, so a filler that is slow, down or stopped dead
 * delays only the vehicles that need it.
 */
#ifndef VEHICLED_ENROLL_H
#define VEHICLED_ENROLL_H

#include <stddef.h>
#include <event2/event.h>

#include "config.h"
#include "provchan.h"
#include "topo.h"
#include "vchip.h"

struct venroll_svc;

enum venroll_kind {
	VENROLL_START,	/* fill an empty chip, register once, rebind a new chip */
	VENROLL_REFILL,	/* F9: a new fill if no key is left, then rebind */
};

/* One vehicle's enrolment; embedded in the vehicle's struct. */
struct venroll {
	struct venroll_svc	*ve_svc;
	struct vchip		*ve_chip;
	const char		*ve_vid;
	const char		*ve_logname;	/* log_setname on each step */
	enum chip_mode		 ve_mode;
	/* venroll's own. */
	void			(*ve_done)(void *arg, int rc);
	void			*ve_arg;
	struct vprov_req	 ve_req;
	struct vprov_chan	*ve_chan;	/* of the request in flight */
	struct event		*ve_ev;		/* a completion without a request */
	enum venroll_kind	 ve_kind;
	int			 ve_step;
	int			 ve_storing;	/* a store step runs (uncancellable) */
	int			 ve_again;	/* start anew when it ends */
	int			 ve_rebind;	/* the registration is a rebind */
	int			 ve_recover;	/* a lost registration: new chip, rebind */
	int			 ve_rc;
	char			 ve_chip_id[65];
};

/*
 * The channels of conf's credentials (factory, and operator if
 * configured) to the filler and the registrar of topo; conf and topo
 * outlive the service.  Ends the process if a credential cannot be
 * loaded.
 */
struct venroll_svc *venroll_svc_new(struct event_base *, const struct vconf *,
	    const struct topo *);
void	venroll_svc_free(struct venroll_svc *);
/* provision_timeout changed (a reload). */
void	venroll_svc_retune(struct venroll_svc *, const struct vconf *);
/*
 * Shutdown: close every channel's connection (enrolments under way must
 * be cancelled first); the loop lets them finish (vprov_chan_draining).
 */
void	venroll_svc_close(struct venroll_svc *);
/* Requests queued or in flight, every channel together. */
size_t	venroll_svc_pending(const struct venroll_svc *);

/*
 * Set up e for the vehicle vid with its chip, drawing keys in mode, its
 * log lines under logname (nothing runs yet); the strings outlive e.
 */
void	venroll_init(struct venroll *, struct venroll_svc *, struct vchip *,
	    const char *vid, enum chip_mode, const char *logname);
void	venroll_clear(struct venroll *);
/*
 * Start an enrolment of kind (one under way is cancelled first): done(arg,
 * rc) comes on the loop later, never inside this call, with OK or the
 * first failure (vprov_transient() tells whether it may go away).
 */
void	venroll_start(struct venroll *, enum venroll_kind,
	    void (*done)(void *arg, int rc), void *arg);
/* Stop an enrolment under way: its done does not come. */
void	venroll_cancel(struct venroll *);
/* 1 while an enrolment is under way. */
int	venroll_busy(const struct venroll *);

#endif
