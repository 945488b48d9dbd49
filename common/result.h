/*
 * The last line of qroam's command-line tools that scripts read
 * (qprobe, qbench): "RESULT STATUS key=value ...".
 */
#ifndef QROAM_RESULT_H
#define QROAM_RESULT_H

/* Print the RESULT line on stdout, flush it and return rc. */
int	result_print(int rc, const char *status, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
