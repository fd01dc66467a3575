/* Fuzzes ISO-8601 instants (common/tz), as --from of the beat's dry run
 * reads them: any text through tq_tz_parse_iso() in a few zones. An
 * instant it accepts is formatted by tq_tz_format_utc() within
 * TQ_TZ_ISO_MAX bytes and reads back to the same millisecond. Any 8
 * bytes, as milliseconds, format within TQ_TZ_ISO_MAX bytes too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/tz.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_iso: %s failed: ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static void check_format(int64_t ms)
{
    char buf[128];
    memset(buf, 'x', sizeof buf);
    tq_tz_format_utc(ms, buf, sizeof buf);
    CHECK(strlen(buf) < TQ_TZ_ISO_MAX, "%lld formats as '%s', %zu bytes", (long long)ms,
          buf, strlen(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    if (size >= 8) {
        int64_t ms;
        memcpy(&ms, data, sizeof ms);
        check_format(ms);
    }
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';
    static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York",
                                        "Australia/Lord_Howe"};
    for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
        const tq_tz *z;
        char err[512];
        CHECK(tq_tz_get(zones[k], &z, err, sizeof err) == 0, "%s", err);
        int64_t ms = 0, back = 0;
        memset(err, 'x', sizeof err);
        int rc = tq_tz_parse_iso(s, z, &ms, err, sizeof err);
        if (rc < 0) {
            CHECK(rc == TQ_EINVAL && memchr(err, '\0', sizeof err) && err[0], "rc %d",
                  rc);
            continue;
        }
        CHECK(rc == 0, "rc %d", rc);
        char iso[TQ_TZ_ISO_MAX];
        tq_tz_format_utc(ms, iso, sizeof iso);
        check_format(ms);
        /* Years 0000 to 9999 are what the parser reads back. */
        if (iso[0] != '-' && strlen(iso) >= 20 && iso[4] == '-') {
            CHECK(tq_tz_parse_iso(iso, z, &back, err, sizeof err) == 0 && back == ms,
                  "'%s' in %s is %lld, written '%s', read back as %lld (%s)", s, zones[k],
                  (long long)ms, iso, (long long)back, err);
        }
    }
    return 0;
}
