/* Capturing what code under test writes to stderr or stdout.
 *
 * tq_test_capture_start() points the file descriptor at a temporary file;
 * tq_test_capture_stop() puts it back and returns what was written. Do not
 * assert between the two: a failing cmocka assert prints to the captured
 * stream and its message would be lost. */
#ifndef TQ_TEST_CAPTURE_H
#define TQ_TEST_CAPTURE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    int fd;    /* the captured descriptor (STDERR_FILENO, STDOUT_FILENO) */
    int saved; /* a dup of the original, -1 when not capturing */
    FILE *tmp; /* the temporary file that receives the output */
} tq_test_capture;

/* Starts capturing fd. Returns 0 or -1. */
int tq_test_capture_start(tq_test_capture *c, int fd);

/* Stops capturing and returns a new NUL-terminated string of the output
 * (free() it), its length in *len when len is not NULL; NULL on failure. */
char *tq_test_capture_stop(tq_test_capture *c, size_t *len);

/* Number of lines (newline characters) in s. */
size_t tq_test_count_lines(const char *s);

/* Number of times needle occurs in s (not overlapping). */
size_t tq_test_count(const char *s, const char *needle);

#endif
