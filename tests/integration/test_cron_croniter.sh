#!/usr/bin/env bash
# Cross-checks tickq's cron against Debian's python3-croniter on a few
# hundred generated expressions, where the two implement the same rules:
# UTC and zones without daylight-saving time (croniter does not apply our
# DST rules), and day fields that croniter combines the way Vixie cron
# does (it ORs a '*/n' day field with a restricted other one, Vixie ANDs
# them, so that combination is left out). Each case compares the next five
# fire times of `tickq-beat --next-runs` with croniter's. croniter also
# turns a day field that lists every day ("1/1", "SUN-SAT") into '*', which
# changes which day rule applies; those are left out too. No Redis needed.
. "$(dirname "$0")/lib.sh"

/usr/bin/python3 -c 'import croniter' 2>/dev/null ||
    tq_fail "python3-croniter is required (apt-get install -y python3-croniter; scripts/deps.sh installs it)"

/usr/bin/python3 - "$TICKQ_BEAT" <<'PY'
import datetime as dt, random, subprocess, sys
from zoneinfo import ZoneInfo
from croniter import croniter

beat = sys.argv[1]
rng = random.Random(20260328)
zones = ["UTC", "Asia/Kolkata", "Asia/Tokyo", "Asia/Kathmandu", "America/Phoenix",
         "Africa/Lagos", "Etc/GMT+11", "Pacific/Kiritimati"]
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()

def item(lo, hi, names=None, star_ok=True):
    k = rng.randrange(7 if star_ok else 5)
    def val(v):
        return names[v - lo] if names and v - lo < len(names) and rng.random() < 0.3 else str(v)
    a = rng.randint(lo, hi)
    b = rng.randint(a, hi)
    if k == 0: return val(a)
    if k == 1: return f"{val(a)}-{val(b)}"
    if k == 2: return f"{val(a)}-{val(b)}/{rng.randint(1, max(1, hi - lo))}"
    if k == 3: return ",".join(sorted({val(rng.randint(lo, hi)) for _ in range(rng.randint(2, 4))}))
    if k == 4: return f"{a}/{rng.randint(1, max(1, (hi - lo) // 2))}"
    if k == 5: return "*"
    return f"*/{rng.randint(1, max(1, (hi - lo) // 2))}"

def field(lo, hi, names=None, star_ok=True, p_star=0.3):
    if star_ok and rng.random() < p_star:
        return "*"
    return item(lo, hi, names, star_ok)

cases = bad = 0
while cases < 300:
    minute = field(0, 59)
    hour = field(0, 23)
    month = field(1, 12, MONTHS, p_star=0.6)
    dom = field(1, 28, p_star=0.5)
    # croniter ORs a '*/n' day field with a restricted other one: keep day
    # fields '*' or free of a leading '*' unless the other is exactly '*'.
    dow = field(0, 6, DAYS, star_ok=(dom == "*"), p_star=0.5)
    if dow != "*" and dom.startswith("*") and dom != "*":
        dom = item(1, 28, star_ok=False)
    expr = f"{minute} {hour} {dom} {month} {dow}"
    exp = croniter(expr).expanded
    if (dom != "*" and exp[2] == ["*"]) or (dow != "*" and exp[4] == ["*"]):
        continue
    tz = rng.choice(zones)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        seconds=rng.randrange(0, 20 * 365 * 86400))
    try:
        it = croniter(expr, start.astimezone(ZoneInfo(tz)))
        want = [it.get_next(dt.datetime).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                for _ in range(5)]
    except Exception as e:  # croniter finds no date (e.g. never within its search)
        continue
    r = subprocess.run([beat, "--next-runs", expr, "--tz", tz, "--count", "5",
                        "--from", start.strftime("%Y-%m-%dT%H:%M:%SZ")],
                       capture_output=True, text=True)
    got = r.stdout.split()
    cases += 1
    if r.returncode != 0 or got != want:
        bad += 1
        print(f"MISMATCH '{expr}' tz {tz} from {start:%Y-%m-%dT%H:%M:%SZ}:\n"
              f"  croniter: {want}\n  tickq:    {got} (exit {r.returncode}) {r.stderr.strip()}",
              file=sys.stderr)
        if bad >= 5:
            break
print(f"{cases} cases, {cases - bad} agree with croniter", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
tq_log "ok: tickq and croniter agree"
