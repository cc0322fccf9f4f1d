import type { ProgressReport } from '../shared/progress.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1.5 GiB` style sizes for people. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** One line: phase, bar (when the total is known), bytes, rate, ETA, entries. */
export function renderProgress(report: ProgressReport, width = 24): string {
  const parts = [report.phase.padEnd(11)];
  if (report.bytesTotal) {
    const ratio = Math.min(1, report.bytesDone / report.bytesTotal);
    const filled = Math.round(ratio * width);
    parts.push(`[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%`);
    parts.push(`${formatBytes(report.bytesDone)}/${formatBytes(report.bytesTotal)}`);
  } else {
    parts.push(formatBytes(report.bytesDone));
  }
  parts.push(`${formatBytes(report.bytesPerSecond)}/s`);
  if (report.etaSeconds !== undefined) parts.push(`ETA ${formatSeconds(report.etaSeconds)}`);
  parts.push(`${report.entriesDone} entries`);
  return parts.join('  ');
}

/**
 * A live progress line on a terminal (redrawn in place), or a plain line at most every
 * `plainIntervalMs` when the output is not a terminal (CI logs).
 */
export class ProgressBar {
  private lastPlainAt = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly plainIntervalMs = 5000,
  ) {}

  update(report: ProgressReport): void {
    const line = renderProgress(report);
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (Date.now() - this.lastPlainAt >= this.plainIntervalMs) {
      this.lastPlainAt = Date.now();
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the live line so what follows starts on a fresh one. */
  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
