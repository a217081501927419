/** One line per step on stderr, so a person watching knows where the run is. */
const t0 = Date.now();

export const progress = (msg: string): void => {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s}s] ${msg}\n`);
};
