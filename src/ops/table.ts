/**
 * Plain-text output of the ops commands: aligned tables and colour, which
 * is used only when the output is a terminal and NO_COLOR is not set
 * (https://no-color.org).
 */
export type Tone = 'ok' | 'warn' | 'fail' | 'dim' | 'head';

const CODES: Record<Tone, string> = { ok: '32', warn: '33', fail: '31', dim: '2', head: '1' };

export interface Paint {
  (tone: Tone, text: string): string;
}

/** Colour for a stream: only on a TTY, never with NO_COLOR set (to anything but ''). */
export const painter = (stream: { isTTY?: boolean }, env: Record<string, string | undefined>): Paint => {
  const on = stream.isTTY === true && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '');
  return (tone, text) => (on ? `\u001b[${CODES[tone]}m${text}\u001b[0m` : text);
};

export const plain: Paint = (_tone, text) => text;

/** A cell: its text, and optionally a tone that colours it without changing its width. */
export type Cell = string | { text: string; tone: Tone };

const textOf = (c: Cell): string => (typeof c === 'string' ? c : c.text);

/** Columns padded to their widest cell, two spaces apart; no trailing blanks. */
export const table = (header: string[], rows: Cell[][], paint: Paint = plain): string[] => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => textOf(r[i] ?? '').length)));
  const line = (cells: Cell[], head: boolean): string =>
    cells
      .map((c, i) => {
        const text = textOf(c);
        const padded = i === cells.length - 1 ? text : text.padEnd(widths[i] ?? 0);
        if (head) return paint('head', padded);
        return typeof c === 'string' ? padded : paint(c.tone, text) + padded.slice(text.length);
      })
      .join('  ')
      .trimEnd();
  return [line(header, true), ...rows.map((r) => line(r, false))];
};

/** "3d4h", "2h5m", "4m10s", "12s". */
export const age = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s % 60}s`;
  return `${s}s`;
};
