// The agent version, from package.json (reported by GetVersion, ServerStatus, status).
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const VERSION: string = (require('../../../package.json') as { version: string }).version;
