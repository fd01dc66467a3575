/* The dry run: `tickq-beat --next-runs EXPR --tz ZONE --from ISO --count N`
 * answers "when will this run?" like `systemd-analyze calendar` does,
 * without Redis. */
#include "beat/dryrun.h"
#include "common/clock.h"
#include "common/cron.h"
#include "common/tz.h"

int beat_dry_run(const tq_config *cfg, FILE *out, FILE *errout)
{
    char err[512];
    const tq_tz *z;
    tq_cron c;
    int64_t t;

    if (tq_tz_get(cfg->tz, &z, err, sizeof err) < 0) {
        fprintf(errout, "tickq-beat: --tz: %s\n", err);
        return 2;
    }
    if (tq_cron_parse(&c, cfg->next_runs, err, sizeof err) < 0) {
        fprintf(errout, "tickq-beat: --next-runs: %s\n", err);
        return 2;
    }
    if (!tq_cron_ever(&c)) {
        fprintf(errout,
                "tickq-beat: --next-runs: '%s' never fires (no day of any year "
                "matches)\n",
                cfg->next_runs);
        return 2;
    }
    if (!cfg->from[0])
        t = tq_clock_wall_ms();
    else if (tq_tz_parse_iso(cfg->from, z, &t, err, sizeof err) < 0) {
        fprintf(errout, "tickq-beat: --from: %s\n", err);
        return 2;
    }
    for (int i = 0; i < cfg->count; i++) {
        char buf[TQ_TZ_ISO_MAX];
        t = tq_cron_next(&c, z, t);
        if (t == TQ_CRON_NEVER)
            break;
        fprintf(out, "%s\n", tq_tz_format_utc(t, buf, sizeof buf));
    }
    return fflush(out) == 0 ? 0 : 1;
}
