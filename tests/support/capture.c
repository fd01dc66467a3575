/* Capturing a file descriptor into a temporary file (see capture.h). */
#include "tests/support/capture.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tq_test_capture_start(tq_test_capture *c, int fd)
{
    fflush(stdout);
    fflush(stderr);
    c->fd = fd;
    c->saved = -1;
    c->tmp = tmpfile();
    if (!c->tmp)
        return -1;
    c->saved = dup(fd);
    if (c->saved < 0 || dup2(fileno(c->tmp), fd) < 0) {
        if (c->saved >= 0)
            close(c->saved);
        c->saved = -1;
        fclose(c->tmp);
        c->tmp = NULL;
        return -1;
    }
    return 0;
}

char *tq_test_capture_stop(tq_test_capture *c, size_t *len)
{
    if (c->saved < 0 || !c->tmp)
        return NULL;
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    c->saved = -1;

    char *out = NULL;
    long n;
    if (fseek(c->tmp, 0, SEEK_END) == 0 && (n = ftell(c->tmp)) >= 0 &&
        fseek(c->tmp, 0, SEEK_SET) == 0 && (out = malloc((size_t)n + 1)) != NULL) {
        size_t got = fread(out, 1, (size_t)n, c->tmp);
        out[got] = '\0';
        if (len)
            *len = got;
    }
    fclose(c->tmp);
    c->tmp = NULL;
    return out;
}

size_t tq_test_count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

size_t tq_test_count(const char *s, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    if (!s || !len)
        return 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}
