/*
 * A vehicle's chip and journal as vehicled's event loop sees them, in one
 * of two stores chosen at start:
 *
 *  - a store file of its own (chip.h), the default: one vehicle, or a
 *    small fleet with the files STORE.i.  Its steps run on the loop, each
 *    key destruction synced there, as the vehicle's own hardware would;
 *  - a slot of the fleet store (vchipdb_open), one SQLite file for every
 *    vehicle of the process, written by a thread of its own: key
 *    destructions, fills, registrations and the journal of all vehicles
 *    are committed together, one sync for each group, and the loop never
 *    waits for the disk.  Reads come from memory, loaded at start.
 *
 * Durable steps answer through a callback, on the loop and never inside
 * the call that asked (both stores alike); a chip key reaches its caller
 * only once its destruction is durable.  The journal (events, counters)
 * never waits: the fleet store writes it with the next group (counters
 * gathered for a minute first), so a crash of the process may lose
 * its last minute of them, never a key or an acknowledged step.
 */
#ifndef VEHICLED_VCHIP_H
#define VEHICLED_VCHIP_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "chip.h"
#include "qroam.pb-c.h"
#include "topo.h"

struct vchip;
struct vchipdb;

/* A chip key drawn and destroyed durably, or why none came. */
typedef void	(*vchip_key_cb)(void *arg, enum chip_draw, struct chip_key *);
/* A durable write: 0 done, -1 failed (logged). */
typedef void	(*vchip_done_cb)(void *arg, int rc);

/* The store file at path (created if missing); NULL on failure (logged). */
struct vchip	*vchip_open_file(struct event_base *, const char *path);

/*
 * The fleet store at path (created if missing), every slot loaded into
 * memory, its writer thread not yet started; NULL on failure (logged).
 */
struct vchipdb	*vchipdb_open(struct event_base *, const char *path);
/* The chip of vid in the fleet store (a new, empty slot if unknown). */
struct vchip	*vchipdb_chip(struct vchipdb *, const char *vid);
/*
 * Before the start: raise the record id mark of every vehicle to ahead_us
 * past the later of now_us and its mark found in the file, durably, so
 * that the first records of the run need no raise of their own; 0 or -1.
 */
int		 vchipdb_raise_marks(struct vchipdb *, int64_t now_us,
		    int64_t ahead_us);
/* Start writing; chips may be used from now on. */
int		 vchipdb_start(struct vchipdb *);
/*
 * Write what is queued, stop the thread and close the file.  Answers not
 * delivered yet are dropped (a key taken then stays destroyed, unused),
 * so this comes before the chips' owners go; what they ask afterwards is
 * dropped too.
 */
void		 vchipdb_close(struct vchipdb *);
/* Close if need be, and free the store with every chip of it. */
void		 vchipdb_free(struct vchipdb *);
/* Slots, and slots holding a registration. */
size_t		 vchipdb_size(const struct vchipdb *);
size_t		 vchipdb_registered(const struct vchipdb *);

/* Release a chip of vchip_open_file (fleet chips go with their store). */
void	vchip_close(struct vchip *);

/* 1 and *ci if the chip holds a fill, 0 if empty, -1 on error. */
int	vchip_get(struct vchip *, struct chip_info *ci);
/*
 * 1 and *cr (release with chip_reg_clear) if a registration is stored, 0
 * if none, -1 on error.
 */
int	vchip_reg(struct vchip *, struct chip_reg *cr);
/* The TSP list of the registration's M1 (shared, read-only), or NULL. */
const struct topo *vchip_tsps(struct vchip *);
/* Unused keys a mode can still draw; -1 on error. */
int64_t	vchip_unused(struct vchip *, enum chip_mode);
/* A counter of the journal (0 if never counted). */
int64_t	vchip_counter(struct vchip *, const char *name);
/*
 * The record id mark as found when the store was opened: every id handed
 * out before is at most this (vchip_counter gives the mark now).
 */
int64_t	vchip_record_floor(struct vchip *);

/* The journal; detail is printf-formatted (never key material). */
void	vchip_event(struct vchip *, const char *kind, const char *tsp_id,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	vchip_count(struct vchip *, const char *name, int64_t delta);

/*
 * Draw the next key of mode and destroy it durably; cb(arg, CHIP_DRAW_OK,
 * key) then (the caller wipes the key), else cb with why not and NULL.
 */
void	vchip_take_key(struct vchip *, enum chip_mode, vchip_key_cb,
	    void *arg);
/*
 * Raise counter name to value unless higher, durably: 0 if that is done
 * on return (a store file; cb does not come), 1 if cb comes once it is,
 * -1 if it failed (logged).
 */
int	vchip_raise(struct vchip *, const char *name, int64_t value,
	    vchip_done_cb, void *arg);
/* 1 for the fleet store, whose durable steps wait for the writer. */
int	vchip_async(const struct vchip *);
/* Write a (validated) fill as the chip's content, then cb. */
void	vchip_fill(struct vchip *, const Qroam__FillRecord *, vchip_done_cb,
	    void *arg);
/* Store M1 as the registration of vid with chip_id, then cb. */
void	vchip_reg_save(struct vchip *, const char *vid, const char *chip_id,
	    const Qroam__M1 *, vchip_done_cb, void *arg);

#endif
