/**
 * Node.js major versions this project supports (README, "Supported Node.js versions"): the
 * package's `engines` starts at the first; CI and the container image run Node 20, the one tested.
 */
export const SUPPORTED_NODE_MAJORS: readonly number[] = [20, 22, 24];

/** The AWS SDK's documented switch for its Node.js version warning (aws/aws-sdk-js-v3#7983). */
export const SDK_NODE_WARNING_VARIABLE = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Turns off the AWS SDK's `NodeVersionSupportWarning` (six lines on stderr from the first client
 * a process creates on Node < 22, because SDK releases after early January 2027 need Node 22)
 * when this process runs a Node major we support: the lock pins an SDK release that supports it,
 * so the warning only adds noise to every S3 command. On any other Node version, or when the
 * operator set the variable either way, nothing changes. Call before the first S3Client.
 *
 * @param env the environment to set the SDK's variable in (default `process.env`)
 * @param nodeVersion `process.versions.node` form, e.g. `20.20.2`
 */
export function quietSdkNodeVersionWarning(env: NodeJS.ProcessEnv = process.env, nodeVersion = process.versions.node): void {
  if (env[SDK_NODE_WARNING_VARIABLE] !== undefined) return;
  const major = Number.parseInt(nodeVersion, 10);
  if (major < 22 && SUPPORTED_NODE_MAJORS.includes(major)) env[SDK_NODE_WARNING_VARIABLE] = 'true';
}
