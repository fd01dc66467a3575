/* Error codes shared by every tickq module.
 *
 * Functions that can fail return 0 on success or a negative TQ_E... code;
 * tq_strerror() turns a code into a short text. The list is one X-macro so
 * that codes and texts never drift apart. */
#ifndef TQ_ERR_H
#define TQ_ERR_H

#include <stddef.h>

#define TQ_ERR_MAP(X)                                                                    \
    X(NOMEM, "out of memory")                                                            \
    X(INVAL, "invalid argument")                                                         \
    X(CONFIG, "bad configuration")                                                       \
    X(HELP, "help requested")                                                            \
    X(VERSION, "version requested")                                                      \
    X(MARKDOWN, "option table requested")                                                \
    X(REDIS, "redis unavailable")                                                        \
    X(REPLY, "unexpected redis reply")                                                   \
    X(DECODE, "undecodable message")                                                     \
    X(TOOBIG, "too large")                                                               \
    X(IO, "i/o error")                                                                   \
    X(BUSY, "held by another owner")                                                     \
    X(STOPPED, "stopped")

enum {
    TQ_OK = 0,
#define TQ_ERR_ENUM(name, text) TQ_E##name,
    TQ_ERR_FIRST_ = -1000,
    TQ_ERR_MAP(TQ_ERR_ENUM)
#undef TQ_ERR_ENUM
};

/* Returns a static text for a TQ_E... code (or "unknown error"). */
const char *tq_strerror(int code);

/* Writes a sentence for a person into err (errlen bytes, NUL-terminated;
 * err may be NULL) and returns code: `return tq_err_set(TQ_EDECODE, err,
 * errlen, "field '%s': missing", f);`. */
int tq_err_set(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
