"""bench/compare's Celery side: the app, its two tasks and its producer.

Celery's defaults throughout (Redis broker, no result backend, acks_late
off, prefetch 4): the only settings are the broker URL and UTC. Nothing
here writes to Redis on a task's path: progress goes to local files.

  COMPARE_REDIS_URL   the private redis-server
  COMPARE_N           noop: when the N-th run returns, its time.time() is
                      written to COMPARE_DONE_FILE (the drain's end)
  COMPARE_READY_FILE  touched by the worker_ready signal
  COMPARE_RUNS_FILE   tick: time.time() at the start of each run, a line each
  COMPARE_DUE_FILE    the beat (RecordingScheduler): each run's due time

As a program: `python3 celery_app.py N` publishes N noop messages.
"""
import os
import sys
import time

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import worker_ready

app = Celery("compare", broker=os.environ["COMPARE_REDIS_URL"])
app.conf.enable_utc = True
app.conf.beat_schedule = {"tick": {"task": "tick", "schedule": 1.0}}

_target = int(os.environ.get("COMPARE_N", "0"))
_done = 0


@app.task(name="noop", ignore_result=True)
def noop():
    global _done
    _done += 1
    if _done == _target:
        now = time.time()
        with open(os.environ["COMPARE_DONE_FILE"], "w") as f:
            f.write("%.6f\n" % now)


@app.task(name="tick", ignore_result=True)
def tick():
    now = time.time()
    with open(os.environ["COMPARE_RUNS_FILE"], "a") as f:
        f.write("%.6f\n" % now)


@worker_ready.connect
def _ready(**_):
    open(os.environ["COMPARE_READY_FILE"], "w").close()


class RecordingScheduler(PersistentScheduler):
    """Celery's default scheduler, writing down when each run was due.

    An interval entry is due at its last run plus the interval (Celery
    counts from the last run, not on a grid); `entry` here is the one whose
    run is being sent, so its last_run_at is the previous run's.
    """

    def apply_entry(self, entry, producer=None):
        due = entry.last_run_at.timestamp() + entry.schedule.run_every.total_seconds()
        with open(os.environ["COMPARE_DUE_FILE"], "a") as f:
            f.write("%.6f\n" % due)
        super().apply_entry(entry, producer=producer)


if __name__ == "__main__":
    n = int(sys.argv[1])
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            noop.apply_async(producer=producer)
