/*
 * Output helpers of qroamctl: tables for people (a header row, columns as
 * wide as their widest cell, two blanks apart), JSON values rendered as
 * cells, durations, and the JSON output of --json.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"

#include "ctl.h"

#define CTL_MAXCOLS	16

struct ctl_table {
	size_t	  t_ncols;
	size_t	  t_nrows;
	size_t	  t_cap;
	char	**t_cells;		/* t_nrows x t_ncols, row 0 = headers */
	size_t	  t_width[CTL_MAXCOLS];
};

void
ctl_err(const char *fmt, ...)
{
	va_list	ap;

	fflush(stdout);
	fputs("qroamctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct ctl_table *
ctl_table_new(const char *const *headers)
{
	struct ctl_table	*t;
	size_t			 n = 0;

	while (headers[n] != NULL && n < CTL_MAXCOLS)
		n++;
	t = xcalloc(1, sizeof(*t));
	t->t_ncols = n;
	ctl_table_row(t, headers);
	return t;
}

void
ctl_table_row(struct ctl_table *t, const char *const *cells)
{
	const char	*s;
	size_t		 i, w;

	if (t->t_nrows == t->t_cap) {
		t->t_cap = t->t_cap ? t->t_cap * 2 : 16;
		t->t_cells = realloc(t->t_cells,
		    t->t_cap * t->t_ncols * sizeof(*t->t_cells));
		if (t->t_cells == NULL)
			fatal("realloc");
	}
	for (i = 0; i < t->t_ncols; i++) {
		s = cells[i] != NULL ? cells[i] : "-";
		t->t_cells[t->t_nrows * t->t_ncols + i] = xstrdup(s);
		if ((w = strlen(s)) > t->t_width[i])
			t->t_width[i] = w;
	}
	t->t_nrows++;
}

void
ctl_table_print(struct ctl_table *t)
{
	size_t		 r, i;
	const char	*s;

	for (r = 0; r < t->t_nrows; r++) {
		for (i = 0; i < t->t_ncols; i++) {
			s = t->t_cells[r * t->t_ncols + i];
			if (i + 1 == t->t_ncols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)t->t_width[i], s);
		}
	}
	fflush(stdout);
}

void
ctl_table_free(struct ctl_table *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->t_nrows * t->t_ncols; i++)
		free(t->t_cells[i]);
	free(t->t_cells);
	free(t);
}

const char *
ctl_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t	*v = json_object_get(obj, key);
	double		 d;

	switch (v == NULL ? JSON_NULL : json_typeof(v)) {
	case JSON_STRING:
		snprintf(buf, len, "%s", json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		break;
	case JSON_REAL:
		d = json_real_value(v);
		if (d == floor(d) && fabs(d) < 1e15)
			snprintf(buf, len, "%.0f", d);
		else
			snprintf(buf, len, "%.4g", d);
		break;
	case JSON_TRUE:
		snprintf(buf, len, "yes");
		break;
	case JSON_FALSE:
		snprintf(buf, len, "no");
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		snprintf(buf, len, "...");
		break;
	default:
		snprintf(buf, len, "-");
		break;
	}
	return buf;
}

const char *
ctl_duration(double secs, char *buf, size_t len)
{
	long long	s;

	if (!(secs >= 0))
		secs = 0;
	s = (long long)secs;
	if (s >= 86400)
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (secs < 10 && secs != (double)s)
		snprintf(buf, len, "%.1fs", secs);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

const char *
ctl_age(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t	*v = json_object_get(obj, key);
	double		 ms, now;

	if (v == NULL || !json_is_number(v) || json_number_value(v) <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	ms = json_number_value(v);
	now = (double)store_now_ms();
	return ctl_duration((now - ms) / 1000.0, buf, len);
}

int
ctl_json_print(const json_t *j)
{
	if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) == -1)
		return -1;
	putchar('\n');
	fflush(stdout);
	return 0;
}
