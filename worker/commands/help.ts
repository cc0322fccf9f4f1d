import { COMMANDS, type CommandSpec } from './commands.js';
import { EXIT_CODES } from './exit-codes.js';
import { FLAGS } from './flags.js';

/** `snapworker --help`: every command with its arguments, then where to read more. */
export function overviewHelp(): string {
  const lines = ['usage: snapworker <command> [arguments] [flags]', '', 'commands:'];
  const heads = COMMANDS.map((c) => `${c.name} ${c.args}`.trim());
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  COMMANDS.forEach((command, i) => lines.push(`  ${heads[i]!.padEnd(width)}${command.summary}`));
  lines.push(
    '',
    '"snapworker help <command>" or "snapworker <command> --help" lists its flags; --version prints the version.',
    'Configuration comes from the environment (see the README).',
    '',
    exitCodeHelp(),
  );
  return lines.join('\n');
}

/** `snapworker help <command>`: usage, every flag the command accepts, notes, exit codes. */
export function commandHelp(command: CommandSpec): string {
  const lines = [`usage: snapworker ${command.name}${command.args ? ` ${command.args}` : ''}${command.flags.length ? ' [flags]' : ''}`, '', command.summary];
  if (command.flags.length > 0) {
    lines.push('', 'flags:');
    const heads = command.flags.map((name) => {
      const spec = FLAGS[name];
      return `--${name}${'value' in spec ? ` ${spec.value}` : ''}`;
    });
    const width = Math.max(...heads.map((h) => h.length)) + 2;
    command.flags.forEach((name, i) => lines.push(`  ${heads[i]!.padEnd(width)}${FLAGS[name].description}`));
  }
  if (command.notes) lines.push('', command.notes);
  lines.push('', exitCodeHelp());
  return lines.join('\n');
}

function exitCodeHelp(): string {
  return `exit codes: ${Object.values(EXIT_CODES).map(({ code, meaning }) => `${code} ${meaning}`).join(', ')}`;
}
