// bench/compare's BullMQ side, with BullMQ's defaults (completed jobs are
// kept: removeOnComplete unset; the events stream capped at 10 000).
//
//   node bullmq.js PORT fill N          pause the queue, addBulk N noop jobs
//   node bullmq.js PORT drain N         a Worker (concurrency 50); prints
//                                       "ready", then "done <ms>" when its N-th
//                                       job completed (its own counter)
//   node bullmq.js PORT resume FIFO     connects, prints "armed", waits for a
//                                       line on FIFO, then resumes the queue
//   node bullmq.js PORT lateness SECS   a job scheduler every 1000 ms and a
//                                       Worker; prints processedOn - due (ms),
//                                       a line per run due in [start + 2 s,
//                                       start + 2 s + SECS)
'use strict';
const fs = require('fs');
const { Queue, Worker } = require('bullmq');

const [port, mode, arg] = process.argv.slice(2);
const connection = { host: '127.0.0.1', port: Number(port) };
const name = 'compare';
const say = (line) => fs.writeSync(1, line + '\n');

async function fill(n) {
  const queue = new Queue(name, { connection });
  await queue.pause();
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) jobs.push({ name: 'noop', data: {} });
    await queue.addBulk(jobs);
  }
  await queue.close();
}

async function drain(n) {
  let done = 0;
  const worker = new Worker(name, async () => {}, { connection, concurrency: 50 });
  worker.on('completed', () => {
    if (++done === n) say(`done ${Date.now()}`);
  });
  await worker.waitUntilReady();
  say('ready');
  process.on('SIGTERM', async () => { await worker.close(); process.exit(0); });
}

async function resume(fifo) {
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  say('armed');
  fs.readFileSync(fifo);
  await queue.resume();
  await queue.close();
}

async function lateness(secs) {
  const start = Date.now() + 2000, end = start + secs * 1000;
  const late = [];
  const worker = new Worker(name, async (job) => {
    const due = Number(job.id.slice(job.id.lastIndexOf(':') + 1)); // repeat:<scheduler>:<due ms>
    if (due >= start && due < end) late.push(job.processedOn - due);
  }, { connection, concurrency: 50 });
  await worker.waitUntilReady();
  const queue = new Queue(name, { connection });
  await queue.upsertJobScheduler('lat', { every: 1000 }, { name: 'tick' });
  await new Promise((resolve) => setTimeout(resolve, end - Date.now() + 500));
  await queue.removeJobScheduler('lat');
  await worker.close();
  await queue.close();
  for (const v of late) say(String(v));
}

const modes = { fill, drain, resume, lateness };
modes[mode](mode === 'resume' ? arg : Number(arg)).catch((e) => {
  console.error(e);
  process.exit(1);
});
