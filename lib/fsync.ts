import { promises as fsp } from 'node:fs';

/**
 * fsync of a file or folder by path: for a file, makes its bytes durable; for a folder, makes the
 * names created, renamed or removed in it durable.
 */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await fsp.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
