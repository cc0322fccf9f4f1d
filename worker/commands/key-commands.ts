import type { Repository } from '../../shared/catalog/repository.js';
import type { WorkerConfig } from '../../shared/config.js';
import { InvalidInputError } from '../../shared/errors.js';
import { parseKeySource, type KeySource } from '../../shared/crypto/key-source.js';
import { addRepositoryKey, listRepositoryKeys, removeRepositoryKey, requireUnlocked, type KeySummary } from '../../shared/crypto/repository-keys.js';
import type { Logger } from '../../shared/logging.js';
import { JobRuntime } from '../job-runner.js';
import { formatColumns } from './columns.js';
import type { CliOptions } from './flags.js';

/**
 * `key ls`, `key add`, `key rm` and `key export-age` (docs/encryption.md): the key objects of an
 * encrypted repository, read and changed in this process with the keys this host is configured
 * with. Never through the queue: keys stay off job data.
 */
export async function runKeyCommand(command: string, args: string[], options: CliOptions, config: WorkerConfig, logger: Logger): Promise<number> {
  const runtime = new JobRuntime(config, logger);
  const out = (text: string) => process.stdout.write(text + '\n');
  try {
    const repository = await runtime.existingRepository(options.repo);
    if (command === 'key ls') {
      await requireEncrypted(repository);
      const keys = await listRepositoryKeys(repository);
      out(options.json ? JSON.stringify(keys, null, 2) : formatKeyTable(keys));
    } else if (command === 'key add') {
      if (options['key-source'].length !== 1) throw new InvalidInputError('key add: give exactly one --key-source (env:VAR, file:/abs/path or kms:KEY-ID)');
      const added = await addRepositoryKey(repository, parseKeySource(options['key-source'][0]!), { label: options['key-label'] });
      out(options.json ? JSON.stringify(added) : `added key ${added.id} (${added.kind}) to repository ${repository.name}`);
    } else if (command === 'key rm') {
      await requireEncrypted(repository);
      await removeRepositoryKey(repository, args[0]!, { allowLast: options.shred });
      out(options.json ? JSON.stringify({ removed: args[0] }) : `removed key ${args[0]} from repository ${repository.name}`);
    } else {
      const key = await requireUnlocked(repository);
      process.stderr.write(`snapworker: this is repository ${repository.name}'s secret archive key: whoever holds it reads every archive\n`);
      // age-keygen's layout, so `age -d -i` takes the file as it is.
      out(`# snapworker repository ${repository.name}, key ${key.keyId}\n# public key: ${key.ageRecipient}\n${key.ageIdentity}`);
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

/**
 * The key sources `init` encrypts a new repository under: `--key-source` when given, else those
 * configured for it; none means a plain repository.
 * @throws InvalidInputError for --encrypt without any source, or for a malformed --key-source.
 */
export function initKeySources(repository: Repository, options: CliOptions): readonly KeySource[] {
  const given = options['key-source'].map(parseKeySource);
  const sources = given.length > 0 ? given : repository.keySources;
  if (options.encrypt && sources.length === 0) {
    throw new InvalidInputError(`init --encrypt: no key source for repository ${repository.name}; give --key-source env:VAR|file:/abs/path|kms:KEY-ID or configure SNAPWORKER_REPOSITORY_KEYS`);
  }
  if (options['key-label'] !== undefined && sources.length === 0) throw new InvalidInputError('init: --key-label labels a key; it does not apply to a repository without encryption');
  return sources;
}

async function requireEncrypted(repository: Repository): Promise<void> {
  if (!(await repository.encryption())) throw new InvalidInputError(`repository ${repository.name} is not encrypted: it has no keys`);
}

function formatKeyTable(keys: KeySummary[]): string {
  return formatColumns(
    ['ID', 'KIND', 'KMS KEY', 'CREATED', 'LABEL'],
    keys.map((key) => [key.id, key.kind, key.kmsKeyId ?? '', key.createdAt.slice(0, 19).replace('T', ' '), key.label ?? '']),
  ).join('\n');
}
