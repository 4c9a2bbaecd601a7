/**
 * A job runner's idle wait: `sleep(ms)` resolves after `ms`, or at once when
 * `wake()` is called (new work was committed, or the runner is stopping).
 * Shared by the import runner and the webhook worker.
 */
export class Idle {
  private wakeSleeper: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeSleeper = undefined;
        resolve();
      }
      this.wakeSleeper = done;
    });
  }

  /** Ends the current sleep, if any. */
  wake(): void {
    this.wakeSleeper?.();
  }
}
