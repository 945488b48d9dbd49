/*
 * Provisioning over the mutual-TLS factory channel: fill the chip from
 * fillerd (F1) and register the vehicle with registrard (F2).
 *
 * The requests travel on provisioning channels (provchan.h) on an event
 * loop.  vehicled submits them on its own loop and handles the replies
 * with vprov_fill_reply / vprov_register_reply and the store steps below,
 * so that no vehicle of a fleet waits for a server another one waits for.
 * The blocking functions (vprov_fill, vprov_register, vprov_enroll,
 * vprov_refill) run one channel on a private event base until the reply:
 * for qroamctl, qbench and the test tool, which have nothing else to do
 * meanwhile.
 */
#ifndef LIBVEHICLE_PROVISION_H
#define LIBVEHICLE_PROVISION_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "topo.h"

/* Outcomes besides the StatusCode a server replied with. */
#define VPROV_NO_REPLY	(-1)	/* no connection, or no reply in time */
#define VPROV_ERROR	(-2)	/* local failure or malformed reply (logged) */

struct vprov {
	const struct topo	*vp_topo;	/* filler and registrar endpoints */
	const char		*vp_ca;
	const char		*vp_cert;	/* factory or operator credential */
	const char		*vp_key;
	size_t			 vp_max_frame;
	int			 vp_timeout_ms;
};

struct frame;

/* The largest frame a fill of m keys (0: the filler's default) takes. */
size_t	vprov_fill_max_frame(const struct vprov *, uint32_t m);
/* A FillRequest for m keys (0: the filler's default). */
void	vprov_fill_request(Qroam__FillRequest *, uint32_t m);
/*
 * Check the reply to a FillRequest: OK and *rec (release with
 * vprov_fill_free), the status the filler refused with, or VPROV_ERROR.
 */
int	vprov_fill_reply(const struct frame *, uint32_t m,
	    Qroam__FillRecord **rec);
void	vprov_fill_free(Qroam__FillRecord *);
/* Write a fill to the chip (replacing any earlier one); OK or VPROV_ERROR. */
int	vprov_fill_store(sqlite3 *db, const Qroam__FillRecord *,
	    struct chip_info *out);
/*
 * Check the reply to a RegisterRequest: OK and *m1 (release with
 * qroam__m1__free_unpacked) once its Pbv decodes, the refusal's status,
 * or VPROV_ERROR.
 */
int	vprov_register_reply(const struct frame *, int rebind, Qroam__M1 **m1);
/* Store M1 as the registration of vid with chip_id; OK or VPROV_ERROR. */
int	vprov_m1_store(sqlite3 *db, const Qroam__M1 *, const char *vid,
	    const char *chip_id, int rebind);
/*
 * What enrolment needs next for the chip in db: 1 if a registration with
 * the chip's chip_id is stored (nothing), 0 if it needs registering
 * (*registered: another chip is registered, a rebind), -1 on error.
 */
int	vprov_reg_current(sqlite3 *db, const struct chip_info *,
	    int *registered);

/*
 * F1: ask fillerd for a fill of m keys (0: its default) and write it to
 * the chip.  Returns QROAM__STATUS_CODE__OK once the chip is written, the
 * status fillerd refused with, or VPROV_*.
 */
int	vprov_fill(const struct vprov *, sqlite3 *db, uint32_t m,
	    struct chip_info *out);
/*
 * F2: register vid with the chip's chip_id (rebind: replace the chip of a
 * registered vehicle, operator credential only).  OK once M1 is stored.
 */
int	vprov_register(const struct vprov *, sqlite3 *db, const char *vid,
	    int rebind);
/*
 * Start-up enrollment: fill an empty chip (m keys), register once, and
 * rebind with the operator credential (oper, may be NULL) when the chip
 * changed since the registration.  OK when the vehicle is registered with
 * its chip, else the first failure (logged; DUPLICATE_REGISTRATION is one).
 */
int	vprov_enroll(const struct vprov *factory, const struct vprov *oper,
	    sqlite3 *db, const char *vid, uint32_t m);
/* 1 if a provisioning result may go away by itself (retry later). */
int	vprov_transient(int);
/*
 * F9 refill with the operator credential: a new fill when the chip has no
 * unused key left for mode, then the rebind of the registration.  OK, or
 * the first failure.
 */
int	vprov_refill(const struct vprov *oper, sqlite3 *db, const char *vid,
	    uint32_t m, enum chip_mode mode);
/* "OK", a status name, "NO_REPLY" or "ERROR". */
const char *vprov_result_name(int);

#endif
