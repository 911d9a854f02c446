// Loaded with `node --import` into a command the startup suite measures: at exit, writes the process's peak
// resident set size in bytes (worker threads included) to the file named by $EGRET_PEAK_RSS_FILE.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env['EGRET_PEAK_RSS_FILE'];
  if (file) writeFileSync(file, String(process.resourceUsage().maxRSS * 1024));
});
