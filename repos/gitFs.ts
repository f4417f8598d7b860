/**
 * The file system isomorphic-git is given. It is Node's, except that loose git objects are written
 * to a temporary file and renamed into place. isomorphic-git writes an object in place and never
 * rewrites one that exists, so a writer killed mid-write would otherwise leave a truncated object
 * that fails every later read of that oid. With the rename, an object file is whole or absent.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** `objects/xx/<38 hex>` at the end of a path: a loose object. */
const LOOSE_OBJECT = /[\\/]objects[\\/][0-9a-f]{2}[\\/][0-9a-f]{38}$/;

let seq = 0;

/**
 * Writes `file` atomically when it is a loose object (temp file in the same folder, then rename),
 * directly otherwise. The temp name starts with `tmp_obj_`, the prefix git itself uses, so git
 * tools ignore (and eventually prune) one a killed writer left. A missing folder still fails with
 * ENOENT, which isomorphic-git answers by creating it and retrying.
 */
export async function writeFileForGit(file: string, data: Parameters<typeof fsp.writeFile>[1], options?: Parameters<typeof fsp.writeFile>[2]): Promise<void> {
  if (!LOOSE_OBJECT.test(file)) return fsp.writeFile(file, data, options);
  const tmp = path.join(path.dirname(file), `tmp_obj_${process.pid}_${++seq}`);
  try {
    await fsp.writeFile(tmp, data, options);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The `fs` argument for every isomorphic-git call (see the module comment). */
export const gitFs = {
  promises: {
    readFile: fsp.readFile.bind(fsp),
    writeFile: writeFileForGit,
    mkdir: fsp.mkdir.bind(fsp),
    rmdir: fsp.rmdir.bind(fsp),
    unlink: fsp.unlink.bind(fsp),
    stat: fsp.stat.bind(fsp),
    lstat: fsp.lstat.bind(fsp),
    readdir: fsp.readdir.bind(fsp),
    readlink: fsp.readlink.bind(fsp),
    symlink: fsp.symlink.bind(fsp),
    chmod: fsp.chmod.bind(fsp),
    rm: fsp.rm.bind(fsp),
  },
};



