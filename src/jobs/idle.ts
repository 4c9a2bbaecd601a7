/**
 * A job runner's idle wait: `sleep(ms)` resolves after `ms`, or at once when
 * `wake()` is called (new work was committed, or the runner is stopping). A
 * wake that comes while the runner is busy is kept: its next sleep returns at
 * once, so work committed during a pass is never left for the next poll.
 * Shared by the import runner and the webhook worker.
 */
export class Idle {
  private wakeSleeper: (() => void) | undefined;
  private woken = false;

  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeSleeper = undefined;
        self.woken = false;
        resolve();
      }
      this.wakeSleeper = done;
    });
  }

  /** Ends the current sleep, or the next one if none is under way. */
  wake(): void {
    if (this.wakeSleeper) this.wakeSleeper();
    else this.woken = true;
  }
}
