/*
 * The emulated security chip and the vehicle's store: one SQLite file with
 * the chip's key sequence (one-time keys, destroyed durably on use), the
 * registration received in M1, an event journal and counters.
 */
#ifndef LIBVEHICLE_CHIP_H
#define LIBVEHICLE_CHIP_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "qroam.pb-c.h"
#include "topo.h"

#define CHIP_KEYLEN	32
#define CHIP_CODEMAX	64

enum chip_mode {
	CHIP_SEQUENTIAL,	/* the next unused key in sequence order */
	CHIP_ARBITRARY,		/* any unused key, named by its code */
};

enum chip_draw {
	CHIP_DRAW_OK,		/* key material returned */
	CHIP_DRAW_NONE,		/* no such key, or no unused key left */
	CHIP_DRAW_DESTROYED,	/* the key exists but was destroyed */
	CHIP_DRAW_ERROR,	/* store failure (logged) */
};

struct chip_info {
	char		ci_chip_id[65];
	uint32_t	ci_m;
	uint32_t	ci_k;
	uint32_t	ci_n;
	uint64_t	ci_filled_ms;
};

/* One key drawn from the chip; wipe with chip_key_wipe() after use. */
struct chip_key {
	uint32_t	ck_index;
	char		ck_code[CHIP_CODEMAX + 1];
	uint8_t		ck_key[CHIP_KEYLEN];
};

struct chip_reg {
	char		 cr_vid[18];
	char		 cr_chip_id[65];
	uint8_t		*cr_pbv;	/* DER SubjectPublicKeyInfo */
	size_t		 cr_pbvlen;
	uint64_t	 cr_ms;
};

/* Open (creating) the store with synchronous=FULL; NULL on failure (logged). */
sqlite3	*chip_open(const char *path);
void	 chip_close(sqlite3 *);

/*
 * Write a fill record as the chip's content, replacing any earlier chip,
 * in one transaction.  The record is validated first.  0 or -1 (logged).
 */
int	chip_fill(sqlite3 *, const Qroam__FillRecord *);
/*
 * The chip's initial key IK_v towards the key management platform, written
 * at fill time when the topology has one (PROTOCOL 11.1): 1 and ik filled
 * (wipe it after use), 0 if the chip has none, -1 on error.
 */
int	chip_initial_key(sqlite3 *, uint8_t ik[CHIP_KEYLEN]);
/* 1 and *ci filled if the chip holds a fill, 0 if empty, -1 on error. */
int	chip_get(sqlite3 *, struct chip_info *);

/* Draw without destroying: the key a mode would use next. */
enum chip_draw chip_draw(sqlite3 *, enum chip_mode, struct chip_key *);
/* Draw a named key (by index or by code). */
enum chip_draw chip_draw_index(sqlite3 *, uint32_t idx, struct chip_key *);
enum chip_draw chip_draw_code(sqlite3 *, const char *code, struct chip_key *);
/*
 * Destroy a key durably: key=NULL, destroyed=1, committed with
 * synchronous=FULL before this returns.  0, or -1 if the key was not
 * unused or the store failed.
 */
int	chip_destroy_key(sqlite3 *, uint32_t idx);
/* Unused keys a mode can still draw; -1 on error. */
int64_t	chip_unused(sqlite3 *, enum chip_mode);
void	chip_key_wipe(struct chip_key *);

/* 0 if vid, chip_id and the TSP list of M1 may be stored, else -1 (logged). */
int	chip_m1_check(const char *vid, const char *chip_id, const Qroam__M1 *);
/* Store the registration of M1 (Pbv and the TSP list) in one transaction. */
int	chip_reg_save(sqlite3 *, const char *vid, const char *chip_id,
	    const Qroam__M1 *);
/* 1 and *cr filled, 0 if not registered, -1 on error. */
int	chip_reg_load(sqlite3 *, struct chip_reg *);
void	chip_reg_clear(struct chip_reg *);
/*
 * The TSP list of M1 as a topology (vehicle endpoints and regions only).
 * Returns the number of TSPs (0: none stored), -1 on error.  Release with
 * chip_reg_tsps_free().
 */
int	chip_reg_tsps(sqlite3 *, struct topo *);
void	chip_reg_tsps_free(struct topo *);

/*
 * The journal: events and counters, committed without waiting for the
 * disk (synchronous=NORMAL: a crash of the process loses none of them, a
 * power loss may lose the last ones).
 */
/* Journal one event; detail is printf-formatted (never key material). */
void	chip_event(sqlite3 *, const char *kind, const char *tsp_id,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	chip_count(sqlite3 *, const char *name, int64_t delta);
int64_t	chip_counter(sqlite3 *, const char *name);
/*
 * Raise counter name to value unless it is higher already (a durable
 * high-water mark, committed before this returns); 0 or -1.
 */
int	chip_counter_raise(sqlite3 *, const char *name, int64_t value);

#endif
