// Loaded with `--import` into every node process a test starts
// (test/helpers/children.ts): when the test process disappears without
// killing it (SIGKILL, the OOM killer), this process is re-parented and
// kills itself, so no server is left running under PID 1.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, "SIGKILL");
}, 500).unref();
