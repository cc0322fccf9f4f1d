// Preload (`node -r bench/thread-cpu.cjs dist/worker/cli.js …`): at exit, prints to stderr the
// CPU-seconds of the event-loop thread and of the whole process, the wall time, the peak RSS, and
// every thread's CPU-seconds (Linux: /proc/self/task/*/stat, utime + stime at 100 ticks/s).
// Per-thread figures separate our JavaScript from zstd's worker threads on a shared machine,
// where wall time says little.
const fs = require('node:fs');
const started = Date.now();
process.on('exit', () => {
  const threads = [];
  let main = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const raw = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
    if (Number(tid) === process.pid) main = seconds;
    else if (seconds > 0.05) threads.push(seconds.toFixed(1));
  }
  const usage = process.cpuUsage();
  fs.writeSync(
    2,
    `CPU main ${main.toFixed(2)} s, all ${((usage.user + usage.system) / 1e6).toFixed(2)} s, wall ${((Date.now() - started) / 1000).toFixed(2)} s, ` +
      `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB, other threads [${threads.join(' ')}]\n`,
  );
});
