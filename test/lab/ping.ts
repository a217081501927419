// Parse ping summaries (iputils and busybox print slightly different lines).

export interface PingSummary {
  transmitted: number;
  received: number;
  lossPercent: number;
}

export interface PingResult extends PingSummary {
  ok: boolean;
  output: string;
}

const SUMMARY = /(\d+) packets transmitted, (\d+)(?: packets)? received(?:, \+\d+ errors)?(?:, \+\d+ duplicates)?, ([\d.]+)% packet loss/;

export function parsePingSummary(output: string): PingSummary | undefined {
  const m = SUMMARY.exec(output);
  if (!m) return undefined;
  return { transmitted: Number(m[1]), received: Number(m[2]), lossPercent: Number(m[3]) };
}

/**
 * A reply line: iputils "64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.05 ms", busybox "... seq=3 ...";
 * iputils -D prefixes "[1700000000.123456] ". Group 1: the sequence number.
 */
export const REPLY_LINE = /^(?:\[\d+\.\d+\] )?\d+ bytes from [^ ]+:? (?:icmp_)?seq=(\d+)/;

/** The unix time (seconds) iputils -D puts in front of a line, if any. */
export const LINE_TIMESTAMP = /^\[(\d+\.\d+)\] /;

/** What a finished ping run means to a test: ok if it exited 0 and got replies. */
export function pingResult(code: number | null, output: string): PingResult {
  const s = parsePingSummary(output);
  return {
    ok: code === 0 && s !== undefined && s.received > 0,
    transmitted: s?.transmitted ?? 0,
    received: s?.received ?? 0,
    lossPercent: s?.lossPercent ?? 100,
    output,
  };
}
