/** Two small hand-written SVG charts for the report: grouped bars and lines. */

const COLORS = ['#8c8c8c', '#1f77b4', '#ff7f0e', '#2ca02c'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: number): string => (Math.round(v * 100) / 100).toString();

const frame = (w: number, h: number, body: string[]): string => [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
  `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
  ...body,
  '</svg>',
  '',
].join('\n');

const legend = (names: string[], x: number, y: number, colorOffset = 0): string[] => names.flatMap((n, i) => [
  `<rect x="${x + i * 150}" y="${y - 10}" width="12" height="12" fill="${COLORS[(i + colorOffset) % COLORS.length]}"/>`,
  `<text x="${x + i * 150 + 18}" y="${y}">${esc(n)}</text>`,
]);

/** A nice round step for an axis that runs to `max`. */
const niceStep = (max: number, ticks = 5): number => {
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
};

export interface BarChart {
  title: string;
  series: string[];
  groups: Array<{ label: string; values: number[] }>;
  /** draw a dashed line at this value (e.g. 1.0 = the baseline) */
  reference?: number;
}

export function barChart(c: BarChart): string {
  const left = 50, top = 50, bottom = 70, groupW = 50 + 26 * c.series.length;
  const plotW = groupW * c.groups.length, plotH = 260;
  const w = Math.max(left + plotW + 20, 9 * c.title.length), h = top + plotH + bottom;
  const max = Math.max(c.reference ?? 0, ...c.groups.flatMap((g) => g.values.filter(Number.isFinite))) * 1.1;
  const step = niceStep(max);
  const y = (v: number) => top + plotH - (v / (Math.ceil(max / step) * step)) * plotH;
  const body = [`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(c.title)}</text>`, ...legend(c.series, left, 40)];
  for (let v = 0; v <= max + 1e-9; v += step) {
    body.push(`<line x1="${left}" x2="${left + plotW}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#e5e5e5"/>`,
      `<text x="${left - 6}" y="${num(y(v) + 4)}" text-anchor="end">${num(v)}</text>`);
  }
  c.groups.forEach((g, gi) => {
    const gx = left + gi * groupW + 15;
    g.values.forEach((v, si) => {
      if (!Number.isFinite(v)) return;
      const x = gx + si * 26;
      body.push(`<rect x="${x}" y="${num(y(v))}" width="22" height="${num(y(0) - y(v))}" fill="${COLORS[si % COLORS.length]}"/>`,
        `<text x="${x + 11}" y="${num(y(v) - 3)}" text-anchor="middle" font-size="10">${v.toFixed(2)}</text>`);
    });
    // "what @mtu" on two lines, so neighbouring labels never overlap
    const [what, at] = g.label.split(' @');
    body.push(`<text x="${gx + 13 * g.values.length}" y="${top + plotH + 16}" text-anchor="middle" font-size="11">${esc(what ?? g.label)}</text>`);
    if (at) body.push(`<text x="${gx + 13 * g.values.length}" y="${top + plotH + 30}" text-anchor="middle" font-size="11" fill="#555">MTU ${esc(at)}</text>`);
  });
  if (c.reference !== undefined) {
    body.push(`<line x1="${left}" x2="${left + plotW}" y1="${num(y(c.reference))}" y2="${num(y(c.reference))}" stroke="#000" stroke-dasharray="5,4"/>`);
  }
  body.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#000"/>`,
    `<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#000"/>`);
  return frame(w, h, body);
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  series: Array<{ name: string; ys: number[] }>;
}

export function lineChart(c: LineChart): string {
  const left = 60, top = 50, plotH = 280, bottom = 50;
  const plotW = Math.max(620, 8.5 * c.title.length - left - 30);
  const w = left + plotW + 30, h = top + plotH + bottom;
  const maxX = Math.max(...c.xs, 1);
  const maxY = Math.max(...c.series.flatMap((s) => s.ys.filter(Number.isFinite)), 0.001) * 1.15;
  const sx = niceStep(maxX, 10), sy = niceStep(maxY);
  const x = (v: number) => left + (v / maxX) * plotW;
  const top_ = Math.ceil(maxY / sy) * sy;
  const y = (v: number) => top + plotH - (v / top_) * plotH;
  const body = [`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(c.title)}</text>`, ...legend(c.series.map((s) => s.name), left, 40, 1)];
  for (let v = 0; v <= top_ + 1e-9; v += sy) {
    body.push(`<line x1="${left}" x2="${left + plotW}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#e5e5e5"/>`,
      `<text x="${left - 6}" y="${num(y(v) + 4)}" text-anchor="end">${num(v)}</text>`);
  }
  for (let v = 0; v <= maxX + 1e-9; v += sx) body.push(`<text x="${num(x(v))}" y="${top + plotH + 16}" text-anchor="middle">${num(v)}</text>`);
  c.series.forEach((s, i) => {
    const pts = c.xs.map((xv, j) => `${num(x(xv))},${num(y(s.ys[j] ?? 0))}`).join(' ');
    const color = COLORS[(i + 1) % COLORS.length];
    body.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`,
      ...c.xs.map((xv, j) => `<circle cx="${num(x(xv))}" cy="${num(y(s.ys[j] ?? 0))}" r="3" fill="${color}"/>`));
  });
  body.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#000"/>`,
    `<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#000"/>`,
    `<text x="${left + plotW / 2}" y="${h - 10}" text-anchor="middle">${esc(c.xLabel)}</text>`,
    `<text x="15" y="${top + plotH / 2}" transform="rotate(-90 15 ${top + plotH / 2})" text-anchor="middle">${esc(c.yLabel)}</text>`);
  return frame(w, h, body);
}
