/* cmocka with the headers it needs, plus asserts that print both values in
 * decimal and, for TQ_E... codes, their texts.
 *
 * cmocka's assert_int_equal prints hexadecimal, which makes a negative error
 * code unreadable; these print "expected -991 (undecodable message), got 0
 * (ok)". Each failure names the expression, the file and the line. */
#ifndef TQ_TEST_CHECK_H
#define TQ_TEST_CHECK_H

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/err.h"

/* actual == expected, for any integer type. */
#define TQ_ASSERT_INT(actual, expected)                                                  \
    do {                                                                                 \
        long long tq_a_ = (long long)(actual), tq_e_ = (long long)(expected);            \
        if (tq_a_ != tq_e_)                                                              \
            fail_msg("%s: expected %lld, got %lld", #actual, tq_e_, tq_a_);              \
    } while (0)

/* lo <= actual <= hi, signed. */
#define TQ_ASSERT_RANGE(actual, lo, hi)                                                  \
    do {                                                                                 \
        long long tq_a_ = (long long)(actual), tq_l_ = (long long)(lo),                  \
                  tq_h_ = (long long)(hi);                                               \
        if (tq_a_ < tq_l_ || tq_a_ > tq_h_)                                              \
            fail_msg("%s: expected %lld..%lld, got %lld", #actual, tq_l_, tq_h_, tq_a_); \
    } while (0)

/* A return code: prints both codes and their tq_strerror() texts. */
#define TQ_ASSERT_RC(actual, expected)                                                   \
    do {                                                                                 \
        int tq_a_ = (int)(actual), tq_e_ = (int)(expected);                              \
        if (tq_a_ != tq_e_)                                                              \
            fail_msg("%s: expected %d (%s), got %d (%s)", #actual, tq_e_,                \
                     tq_strerror(tq_e_), tq_a_, tq_strerror(tq_a_));                     \
    } while (0)

/* The same, also printing an error buffer filled by the call. */
#define TQ_ASSERT_RC_ERR(actual, expected, errbuf)                                       \
    do {                                                                                 \
        int tq_a_ = (int)(actual), tq_e_ = (int)(expected);                              \
        if (tq_a_ != tq_e_)                                                              \
            fail_msg("%s: expected %d (%s), got %d (%s); err: \"%s\"", #actual, tq_e_,   \
                     tq_strerror(tq_e_), tq_a_, tq_strerror(tq_a_), (errbuf));           \
    } while (0)

/* Two doubles within eps. */
#define TQ_ASSERT_DOUBLE(actual, expected, eps)                                          \
    do {                                                                                 \
        double tq_a_ = (double)(actual), tq_e_ = (double)(expected);                     \
        if (!(tq_a_ - tq_e_ <= (eps) && tq_e_ - tq_a_ <= (eps)))                         \
            fail_msg("%s: expected %.17g, got %.17g", #actual, tq_e_, tq_a_);            \
    } while (0)

/* Two C strings equal (NULL prints as "(null)"). */
#define TQ_ASSERT_STR(actual, expected)                                                  \
    do {                                                                                 \
        const char *tq_a_ = (actual), *tq_e_ = (expected);                               \
        if (!tq_a_ || !tq_e_ || strcmp(tq_a_, tq_e_) != 0)                               \
            fail_msg("%s: expected \"%s\", got \"%s\"", #actual,                         \
                     tq_e_ ? tq_e_ : "(null)", tq_a_ ? tq_a_ : "(null)");                \
    } while (0)

/* needle occurs in haystack. */
#define TQ_ASSERT_CONTAINS(haystack, needle)                                             \
    do {                                                                                 \
        const char *tq_h_ = (haystack), *tq_n_ = (needle);                               \
        if (!tq_h_ || !strstr(tq_h_, tq_n_))                                             \
            fail_msg("%s: expected to contain \"%s\", got \"%s\"", #haystack, tq_n_,     \
                     tq_h_ ? tq_h_ : "(null)");                                          \
    } while (0)

/* needle does not occur in haystack. */
#define TQ_ASSERT_NOT_CONTAINS(haystack, needle)                                         \
    do {                                                                                 \
        const char *tq_h_ = (haystack), *tq_n_ = (needle);                               \
        if (tq_h_ && strstr(tq_h_, tq_n_))                                               \
            fail_msg("%s: expected not to contain \"%s\", got \"%s\"", #haystack, tq_n_, \
                     tq_h_);                                                             \
    } while (0)

#endif
