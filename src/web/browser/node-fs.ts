/**
 * `node:fs` for the offline report's what-if engine: there is no file system in the page. The engine loads the
 * scenario from the answers recorded when the report was written (`replayedSource`), so nothing calls these; if
 * something did, it fails with a message rather than reading anything.
 */

function none(name: string): never {
  throw new Error(`${name}: there is no file system in the offline report (the scenario's files are embedded)`);
}

export const constants = { O_RDONLY: 0, O_WRONLY: 1, O_CREAT: 64, O_EXCL: 128, O_NONBLOCK: 2048, O_NOFOLLOW: 131072 };
export const existsSync = (): never => none('exists');
export const statSync = (): never => none('stat');
export const lstatSync = (): never => none('lstat');
export const fstatSync = (): never => none('fstat');
export const readdirSync = (): never => none('readdir');
export const readFileSync = (): never => none('readFile');
export const openSync = (): never => none('open');
export const readSync = (): never => none('read');
export const writeSync = (): never => none('write');
export const closeSync = (): never => none('close');
export const mkdirSync = (): never => none('mkdir');
export const realpathSync = (): never => none('realpath');
