import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidInputError } from '../../shared/errors.js';
import { closest } from './closest.js';
import { ALL_FLAG_SPECS, COMMANDS, findCommand, flagSpecsOf, kindFlagsOf, type CommandSpec } from './commands.js';
import { FLAGS, type CliOptions, type FlagSpec } from './flags.js';

/** What the user asked for. */
export type CommandLine =
  | { kind: 'run'; command: CommandSpec; args: string[]; options: CliOptions }
  /** `--help`, `help [command]`, or no command at all (then `usage` is true: exit 2). */
  | { kind: 'help'; command?: CommandSpec; usage?: boolean }
  | { kind: 'version' };

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

const ALL_FLAGS: Record<string, FlagSpec> = { ...Object.fromEntries(ALL_FLAG_SPECS), version: { type: 'boolean', short: 'V', description: 'print the version' } };

/**
 * Parses `argv` (without node and the script) against the command's own flags. Anything the
 * command would ignore is refused instead: an unknown flag (with the closest known one
 * suggested), a flag of another command, a missing flag value, too few or too many arguments.
 * @throws InvalidInputError with one line naming the problem (exit code 2).
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  // A first, lenient pass only to find the command and the flags as typed.
  const { positionals, tokens } = parseArgs({ args: [...argv], options: ALL_FLAGS as ParseArgsConfig['options'], strict: false, allowPositionals: true, tokens: true });
  const flagsTyped = tokens.filter((t): t is Extract<Token, { kind: 'option' }> => t.kind === 'option');
  const wantsHelp = flagsTyped.some((t) => t.name === 'help' || t.name === 'h');

  if (flagsTyped.some(isVersionFlag)) return versionOnly(positionals, flagsTyped);
  if (positionals.length === 0) return wantsHelp ? { kind: 'help' } : { kind: 'help', usage: true };
  let identified: [CommandSpec, string[]];
  try {
    identified = identifyCommand(positionals);
  } catch (err) {
    // `--lable app=x snapshot ...`: the unknown flag took no value, so its value looks like the
    // command; the flag is the mistake to report.
    const unknown = flagsTyped.find((t) => !Object.hasOwn(ALL_FLAGS, t.name));
    if (!unknown) throw err;
    const guess = closest(unknown.name, [...ALL_FLAG_SPECS.keys()]);
    throw new InvalidInputError(`unknown flag ${unknown.rawName}${guess ? ` (did you mean --${guess}?)` : ''}`);
  }
  const [command, argsAfter] = identified;
  const seen = new Set<string>();
  for (const token of flagsTyped) {
    checkFlag(token, command);
    refuseRepeat(token, command, seen);
  }
  if (command.name === 'help') {
    if (argsAfter.length === 0) return { kind: 'help' };
    const [topic, rest] = identifyCommand(argsAfter);
    refuseExtra(command, rest);
    return { kind: 'help', command: topic };
  }
  // `ls --help extra` is as wrong as `ls extra`: refused, not silently answered with help.
  refuseExtra(command, argsAfter.slice(command.maxArgs));
  if (wantsHelp) return { kind: 'help', command };
  const options = strictParse(argv, command);
  if (argsAfter.length < command.minArgs) {
    throw new InvalidInputError(`${command.name}: missing arguments: ${usageLine(command)}`);
  }
  return { kind: 'run', command, args: argsAfter, options };
}

function isVersionFlag(token: Extract<Token, { kind: 'option' }>): boolean {
  return token.name === 'version' || token.name === 'V';
}

/** `--version` stands alone: `snapworker --version extra` would otherwise exit 0 having ignored `extra`. */
function versionOnly(positionals: readonly string[], flagsTyped: ReadonlyArray<Extract<Token, { kind: 'option' }>>): CommandLine {
  const others = [
    ...flagsTyped.filter((t) => !isVersionFlag(t)).map((t) => t.rawName),
    ...flagsTyped.filter((t) => isVersionFlag(t) && t.inlineValue).map((t) => `${t.rawName}=${t.value}`),
    ...positionals.map((a) => JSON.stringify(a)),
  ];
  if (others.length > 0) throw new InvalidInputError(`--version takes no arguments and no other flags (got ${others.join(' ')})`);
  return { kind: 'version' };
}

/** Arguments a command does not take are refused, never ignored. */
function refuseExtra(command: CommandSpec, extra: readonly string[]): void {
  if (extra.length === 0) return;
  const shown = extra.map((a) => JSON.stringify(a)).join(' ');
  throw new InvalidInputError(`${command.name}: unexpected argument ${shown} (usage: ${usageLine(command)})`);
}

function usageLine(command: CommandSpec): string {
  return ['snapworker', command.name, command.args, command.flags.length > 0 ? '[flags]' : ''].filter(Boolean).join(' ');
}

/**
 * A flag that holds one value given twice (`--repo a --repo b`) is refused rather than letting the
 * last one win: one of the two was a mistake, and we cannot know which. Repeatable flags
 * (`--label`) collect every value; a boolean said twice means the same as once.
 */
function refuseRepeat(token: Extract<Token, { kind: 'option' }>, command: CommandSpec, seen: Set<string>): void {
  const spec = ALL_FLAGS[token.name];
  if (spec === undefined || spec.type !== 'string' || spec.multiple) return;
  if (seen.has(token.name)) throw new InvalidInputError(`${command.name}: --${token.name} given more than once; it takes one value`);
  seen.add(token.name);
}

/** The command the positionals start with, and the arguments after its name. */
function identifyCommand(positionals: readonly string[]): [CommandSpec, string[]] {
  const [first, second, ...rest] = positionals as [string, ...string[]];
  const withSub = second === undefined ? undefined : findCommand(`${first} ${second}`);
  if (withSub) return [withSub, rest];
  const plain = findCommand(first);
  if (plain) return [plain, positionals.slice(1)];
  const family = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name);
  if (family.length > 0) {
    const choices = family.map((n) => `"${n}"`).join(', ');
    if (second === undefined) throw new InvalidInputError(`"${first}" needs a subcommand: ${choices}`);
    throw new InvalidInputError(`"${first} ${second}" is not a subcommand of "${first}": ${choices}`);
  }
  const guess = closest(first, COMMANDS.map((c) => c.name));
  throw new InvalidInputError(`unknown command "${first}"${guess ? ` (did you mean "${guess}"?)` : ''}; "snapworker --help" lists the commands`);
}

function checkFlag(token: Extract<Token, { kind: 'option' }>, command: CommandSpec): void {
  const typed = token.rawName;
  const name = token.name;
  const accepts = [...flagSpecsOf(command).keys()];
  if (!Object.hasOwn(ALL_FLAGS, token.name)) {
    const guess = closest(token.name, accepts.length ? accepts : [...ALL_FLAG_SPECS.keys()]);
    throw new InvalidInputError(`${command.name}: unknown flag ${typed}${guess ? ` (did you mean --${guess}?)` : ''}; "snapworker help ${command.name}" lists its flags`);
  }
  if (!accepts.includes(name) && name !== 'help') {
    const accepted = accepts.length ? accepts.map((f) => `--${f}`).join(' ') : 'none';
    throw new InvalidInputError(`${command.name}: ${typed} does not apply to ${command.name} (its flags: ${accepted})`);
  }
  const spec = ALL_FLAGS[name]!;
  if (spec.type === 'string' && token.value === undefined) {
    throw new InvalidInputError(`${command.name}: ${typed} needs a value (${typed} ${spec.value ?? 'VALUE'})`);
  }
  if (spec.type === 'boolean' && token.inlineValue) {
    throw new InvalidInputError(`${command.name}: ${typed} takes no value`);
  }
}

/** The strict parse with only the command's flags; its raw errors become one line of ours. */
function strictParse(argv: readonly string[], command: CommandSpec): CliOptions {
  const options: Record<string, FlagSpec & { default?: boolean | string[] }> = { help: FLAGS.help };
  for (const [name, spec] of flagSpecsOf(command)) {
    options[name] = { ...spec, ...(spec.type === 'boolean' ? { default: false } : spec.multiple ? { default: [] } : {}) };
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: options as ParseArgsConfig['options'], strict: true, allowPositionals: true }));
  } catch (err) {
    // Node's text quotes the flag with an unclosed quote and suggests '--' usage; keep the gist.
    const text = (err as Error).message.split('\n')[0]!.replace(/[.']/g, '');
    throw new InvalidInputError(`${command.name}: ${text}`);
  }
  const kindFields: Record<string, unknown> = {};
  for (const flag of kindFlagsOf(command)) {
    let value: unknown;
    try {
      value = flag.toField(values[flag.name]);
    } catch (err) {
      throw new InvalidInputError(`${command.name}: ${(err as Error).message}`);
    }
    delete values[flag.name];
    if (value !== undefined) kindFields[flag.field] = value;
  }
  return { label: [], ...defaultsOfAll(), ...values, kindFields } as unknown as CliOptions;
}

/** Every boolean false, so code reading a flag of another command sees "not given". */
function defaultsOfAll(): Record<string, boolean> {
  return Object.fromEntries(Object.entries(FLAGS).filter(([, spec]) => spec.type === 'boolean').map(([name]) => [name, false]));
}
