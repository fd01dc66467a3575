#!/usr/bin/python3
"""Checks a Prometheus text exposition (format 0.0.4) with a real parser,
Debian's python3-prometheus-client, plus the rules that parser is too lax
to enforce, and prints what it read as JSON for a test to query with jq.

Usage: prom_check.py FILE [--hash DUMP]
Exit 0 and JSON on stdout when every check passes, else exit 1 with the
reasons on stderr. The JSON:
  {"families": {"<family>": "<type>", ...},
   "samples": [{"name": ..., "labels": {...}, "value": <number or "+Inf",
                "-Inf", "NaN">}, ...],
   "comments": ["# tickq: ...", ...]}
(the parser names a counter's family without "_total"; samples keep their
full names).

Checks: the text is valid UTF-8 and parses; every family has a TYPE and a
HELP line and a type Prometheus knows; names and label names are valid,
start with "tickq_", and a counter's samples end in "_total"; no series
(name and labels) appears twice; every histogram, for each label set, has
buckets with distinct "le" values ending in "+Inf", cumulative (never
decreasing as "le" grows), a _sum, and a _count equal to its +Inf bucket.

With --hash DUMP (the output of `redis-cli --raw HGETALL <prefix>:metrics`,
one field or value a line, so none may hold a newline), it also checks that
the families read from P:metrics say exactly what the hash does (layout:
common/metrics.h): the same tickq_tasks_total series with the same values;
for each queue and task, runtime buckets that are the running sums of the
per-bucket counts, at the bounds TQ_METRICS_RUNTIME_BUCKETS, with the same
_sum; the same for the lateness histogram. Fields of unknown families are
ignored, as the web does.
"""
import json
import math
import os
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME_RE = re.compile(r"^tickq_[a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = {"counter", "gauge", "histogram", "summary"}


def value_json(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def check(text):
    errors = []
    families = {}
    samples = []
    seen = set()
    for fam in text_string_to_metric_families(text):
        if fam.name in families:
            errors.append("family %s appears twice" % fam.name)
        families[fam.name] = fam.type
        if fam.type not in TYPES:
            errors.append("family %s has type %s (no TYPE line?)" % (fam.name, fam.type))
        if not fam.documentation:
            errors.append("family %s has no HELP" % fam.name)
        if not NAME_RE.match(fam.name):
            errors.append("family name %r is not tickq_[a-zA-Z0-9_:]*" % fam.name)
        hist = {}
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                errors.append("series %s%s appears twice" % (s.name, dict(key[1])))
            seen.add(key)
            for label in s.labels:
                if not LABEL_RE.match(label) or label.startswith("__"):
                    errors.append("%s: bad label name %r" % (s.name, label))
            if fam.type == "counter" and not s.name.endswith("_total"):
                errors.append("counter sample %s does not end in _total" % s.name)
            samples.append({"name": s.name, "labels": s.labels, "value": value_json(s.value)})
            if fam.type == "histogram":
                rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                h = hist.setdefault(rest, {"buckets": [], "sum": None, "count": None})
                if s.name.endswith("_bucket"):
                    if "le" not in s.labels:
                        errors.append("%s%s has no le" % (s.name, dict(rest)))
                        continue
                    h["buckets"].append((float(s.labels["le"]), s.labels["le"], s.value))
                elif s.name.endswith("_sum"):
                    h["sum"] = s.value
                elif s.name.endswith("_count"):
                    h["count"] = s.value
        for rest, h in hist.items():
            where = "%s%s" % (fam.name, dict(rest))
            b = sorted(h["buckets"])
            les = [x[0] for x in b]
            if len(set(les)) != len(les):
                errors.append("%s: an le value appears twice" % where)
            if not b or not math.isinf(b[-1][0]):
                errors.append("%s: no +Inf bucket" % where)
                continue
            if b[-1][1] != "+Inf":
                errors.append("%s: the last bucket is le=%r, not +Inf" % (where, b[-1][1]))
            for lo, hi in zip(b, b[1:]):
                if hi[2] < lo[2]:
                    errors.append("%s: buckets not cumulative: le=%s %g > le=%s %g"
                                  % (where, lo[1], lo[2], hi[1], hi[2]))
            if h["sum"] is None:
                errors.append("%s: no _sum" % where)
            if h["count"] is None:
                errors.append("%s: no _count" % where)
            elif h["count"] != b[-1][2]:
                errors.append("%s: _count %g != +Inf bucket %g" % (where, h["count"], b[-1][2]))
    comments = [l for l in text.split("\n")
                if l.startswith("#") and not l.startswith(("# HELP ", "# TYPE "))]
    return errors, {"families": families, "samples": samples, "comments": comments}


def header_bounds(macro):
    """The bucket bounds a macro of common/metrics.h lists."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common",
                        "metrics.h")
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"#define %s\s+([0-9.,\s]+)" % macro, text)
    return [float(x) for x in m.group(1).split(",")]


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compare_hash(out, dump_path):
    """Compares the P:metrics families of out with the hash in dump_path."""
    errors = []
    with open(dump_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 2:
        return ["%s: an odd number of lines" % dump_path]
    rt_bounds = header_bounds("TQ_METRICS_RUNTIME_BUCKETS")
    lt_bounds = header_bounds("TQ_METRICS_LATENESS_BUCKETS")
    tasks, runtime = {}, {}
    late = {"counts": [0] * (len(lt_bounds) + 1), "sum": 0.0}
    for field, value in zip(lines[0::2], lines[1::2]):
        parts = field.split("\t")
        if parts[0] == "tasks" and len(parts) == 4:
            tasks[tuple(parts[1:])] = int(value)
        elif parts[0] == "runtime" and len(parts) == 4:
            h = runtime.setdefault((parts[1], parts[2]),
                                   {"counts": [0] * (len(rt_bounds) + 1), "sum": 0.0})
            h["counts"][int(parts[3])] = int(value)
        elif parts[0] == "runtime_sum" and len(parts) == 3:
            h = runtime.setdefault((parts[1], parts[2]),
                                   {"counts": [0] * (len(rt_bounds) + 1), "sum": 0.0})
            h["sum"] = float(value)
        elif parts[0] == "lateness" and len(parts) == 2:
            late["counts"][int(parts[1])] = int(value)
        elif parts == ["lateness_sum"]:
            late["sum"] = float(value)
    got_tasks = {(s["labels"]["queue"], s["labels"]["task"], s["labels"]["state"]): s["value"]
                 for s in out["samples"] if s["name"] == "tickq_tasks_total"}
    if got_tasks != tasks:
        errors.append("tickq_tasks_total %s != P:metrics %s" % (sorted(got_tasks.items()),
                                                                  sorted(tasks.items())))

    def histogram(name, labels, bounds, want, where):
        def match(s):
            return all(s["labels"].get(k) == v for k, v in labels.items())
        buckets = sorted((float(s["labels"]["le"]), s["value"]) for s in out["samples"]
                         if s["name"] == name + "_bucket" and match(s))
        sums = [s["value"] for s in out["samples"] if s["name"] == name + "_sum" and match(s)]
        counts = [s["value"] for s in out["samples"] if s["name"] == name + "_count" and match(s)]
        cum, running = [], 0
        for c in want["counts"]:
            running += c
            cum.append(running)
        if [b[0] for b in buckets] != bounds + [math.inf]:
            errors.append("%s: le %s, not %s and +Inf" % (where, [b[0] for b in buckets], bounds))
        elif [b[1] for b in buckets] != cum:
            errors.append("%s: buckets %s, expected the running sums %s of %s"
                          % (where, [b[1] for b in buckets], cum, want["counts"]))
        if counts != [running]:
            errors.append("%s: _count %s, expected %d" % (where, counts, running))
        if len(sums) != 1 or not close(sums[0], want["sum"]):
            errors.append("%s: _sum %s, expected %r" % (where, sums, want["sum"]))

    got_rt = {(s["labels"]["queue"], s["labels"]["task"]) for s in out["samples"]
              if s["name"].startswith("tickq_task_runtime_seconds_")}
    if got_rt != set(runtime):
        errors.append("tickq_task_runtime_seconds for %s, P:metrics has %s"
                      % (sorted(got_rt), sorted(runtime)))
    for (q, t), want in sorted(runtime.items()):
        histogram("tickq_task_runtime_seconds", {"queue": q, "task": t}, rt_bounds, want,
                  "tickq_task_runtime_seconds{queue=%r,task=%r}" % (q, t))
    histogram("tickq_tick_lateness_seconds", {}, lt_bounds, late, "tickq_tick_lateness_seconds")
    return errors


def main():
    args = sys.argv[1:]
    dump = None
    if len(args) == 3 and args[1] == "--hash":
        dump = args[2]
        args = args[:1]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        print("prom_check: not valid UTF-8: %s" % e, file=sys.stderr)
        return 1
    if text and not text.endswith("\n"):
        print("prom_check: the last line has no newline", file=sys.stderr)
        return 1
    try:
        errors, out = check(text)
    except Exception as e:  # the parser raises ValueError and others on bad input
        print("prom_check: the parser failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    if not errors and dump:
        errors = compare_hash(out, dump)
    for e in errors:
        print("prom_check: %s" % e, file=sys.stderr)
    if errors:
        return 1
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
