/*
 * The RESULT line of the tools that scripts drive.
 */
#include <stdarg.h>
#include <stdio.h>

#include "result.h"

int
result_print(int rc, const char *status, const char *fmt, ...)
{
	va_list	ap;

	printf("RESULT %s", status);
	if (fmt != NULL && fmt[0] != '\0') {
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
	return rc;
}
