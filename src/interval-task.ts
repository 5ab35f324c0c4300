/**
 * Runs `task` every `intervalMs` (and once at the start, with `runNow`), one run at a time: a run
 * that outlasts the interval makes the next one wait, not overlap. A failed run goes to `onError`
 * and the next one comes as planned. Returns the stop, which waits for a run in progress.
 */
export function startIntervalTask(
  task: () => Promise<void>,
  intervalMs: number,
  onError: (error: unknown) => void,
  { runNow = false }: { runNow?: boolean } = {},
): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = running.then(task).catch(onError);
  };
  if (runNow) run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
