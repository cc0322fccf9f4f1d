import { COMMANDS, kindFlagsOf, type CommandSpec } from './commands.js';
import { EXIT_CODES } from './exit-codes.js';
import { FLAGS, type FlagSpec } from './flags.js';

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

/**
 * `snapworker help <command>`: usage, every flag the command accepts (its own, then each kind's
 * under the kind's name), notes, exit codes.
 */
export function commandHelp(command: CommandSpec): string {
  const sections: { title: string; flags: [string, FlagSpec][] }[] = [{ title: 'flags:', flags: command.flags.map((name) => [name, FLAGS[name]]) }];
  for (const flag of kindFlagsOf(command)) {
    for (const kind of flag.kinds) {
      const title = `${kind} ${command.kindFlags} flags:`;
      const section = sections.find((s) => s.title === title) ?? sections[sections.push({ title, flags: [] }) - 1]!;
      section.flags.push([flag.name, flag.spec]);
    }
  }
  const given = sections.filter((section) => section.flags.length > 0);
  const lines = [`usage: snapworker ${command.name}${command.args ? ` ${command.args}` : ''}${given.length ? ' [flags]' : ''}`, '', command.summary];
  const head = ([name, spec]: [string, FlagSpec]) => `--${name}${spec.value ? ` ${spec.value}` : ''}`;
  const width = Math.max(0, ...given.flatMap((section) => section.flags.map((flag) => head(flag).length))) + 2;
  for (const section of given) {
    lines.push('', section.title);
    for (const flag of section.flags) lines.push(`  ${head(flag).padEnd(width)}${flag[1].description}`);
  }
  if (command.notes) lines.push('', command.notes);
  lines.push('', exitCodeHelp());
  return lines.join('\n');
}

function exitCodeHelp(): string {
  return `exit codes: ${Object.values(EXIT_CODES).map(({ code, meaning }) => `${code} ${meaning}`).join(', ')}`;
}
