/* err.h: the one way model pieces and primitives report an error: a
 * message into the caller's buffer and -1 returned (only stages die).
 * Prefix err_. */
#ifndef ERR_H
#define ERR_H

#include <stdarg.h>
#include <stdio.h>

/* Format a message into err [cap]; always returns -1. */
__attribute__((format(printf, 3, 4))) static inline int err_set(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

#endif
