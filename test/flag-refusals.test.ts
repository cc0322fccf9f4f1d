import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../shared/errors.js';
import { ALL_FLAG_SPECS, COMMANDS, flagSpecsOf, type CommandSpec } from '../worker/commands/commands.js';
import { parseCommandLine } from '../worker/commands/parse-command-line.js';

/** The command as typed with as many placeholder arguments as it needs. */
function argvOf(command: CommandSpec): string[] {
  return [...command.name.split(' '), ...Array.from({ length: command.minArgs }, (_, i) => `arg${i}`)];
}

function flagArgv(name: string): string[] {
  return ALL_FLAG_SPECS.get(name)!.type === 'boolean' ? [`--${name}`] : [`--${name}`, 'value'];
}

describe('flags that do not apply to a command', () => {
  it('are refused for every command and every flag it does not declare, naming the flag and the command', () => {
    let refusals = 0;
    for (const command of COMMANDS) {
      const accepts = flagSpecsOf(command);
      for (const name of ALL_FLAG_SPECS.keys()) {
        if (accepts.has(name) || name === 'help') continue;
        const argv = [...argvOf(command), ...flagArgv(name)];
        assert.throws(
          () => parseCommandLine(argv),
          (err: unknown) => err instanceof InvalidInputError && err.message.startsWith(`${command.name}: --${name} does not apply to ${command.name}`),
          `snapworker ${argv.join(' ')} was not refused`,
        );
        refusals++;
      }
    }
    // Every command refuses most flags: a sanity floor, so an empty walk cannot pass.
    assert.ok(refusals > COMMANDS.length * 10, `${refusals} refusals`);
  });

  it('include the ones users reported (verify --include, --replace, --expires) and the new commands\' neighbours\' flags', () => {
    const refused = (argv: string[]) => assert.throws(() => parseCommandLine(argv), InvalidInputError, argv.join(' '));
    refused(['verify', 'latest', '--replace']);
    refused(['verify', 'latest', '--expires', '1h']);
    refused(['verify', 'latest', '--include', 'sub/*']);
    refused(['restore', 'latest', 'dir:///tmp/x', '--expires', '1h']);
    refused(['diff', 'a', 'b', '--wait']);
    refused(['find', '*.conf', '--to', 'other']);
    refused(['check', '--label', 'app=x']);
    refused(['copy', 'latest', '--to', 'b', '--read-data-subset', '5%']);
  });

  it('every flag a command declares parses for it (no declared flag is refused)', () => {
    for (const command of COMMANDS) {
      for (const name of flagSpecsOf(command).keys()) {
        const argv = [...argvOf(command), ...flagArgv(name)];
        try {
          parseCommandLine(argv);
        } catch (err) {
          assert.doesNotMatch((err as Error).message, /does not apply/, `snapworker ${argv.join(' ')}`);
        }
      }
    }
  });
});
