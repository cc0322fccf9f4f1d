/**
 * Preload for child processes whose peak memory a test measures:
 * `node --import tsx --import ./test/helpers/peak-rss.ts …` writes the process's peak resident
 * set size in bytes (getrusage `ru_maxrss`, threads included) to the file named by
 * `PEAK_RSS_FILE` when the process exits.
 */
import { writeFileSync } from 'node:fs';

const target = process.env.PEAK_RSS_FILE;
if (target) process.on('exit', () => writeFileSync(target, String(process.resourceUsage().maxRSS * 1024)));
