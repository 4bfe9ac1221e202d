/**
 * Read buffers of file downloads (the file store and the image cache), shared
 * by every download of the process. Each download takes READ_SLOTS buffers of
 * READ_CHUNK bytes and gives them back when the socket is done with them;
 * up to MAX_IDLE_BUFFERS are kept for the next downloads. Fresh buffers per
 * download were the bulk of the service's memory under many concurrent
 * downloads: 16 downloads held 64 MiB that lay dead until a full GC.
 *
 * 256 KiB x 4 (1 MiB a download): in the bench as fast per CPU second as
 * 1 MiB x 4 for one 1 GiB download; two slots stall the disk behind the socket.
 */
export const READ_CHUNK = 256 * 1024;
export const READ_SLOTS = 4;
/** Four downloads' worth (4 MiB): what stays allocated between bursts of downloads. */
const MAX_IDLE_BUFFERS = 16;

const idle: Buffer[] = [];

export function takeReadBuffers(): Buffer[] {
  return Array.from(
    { length: READ_SLOTS },
    () => idle.pop() ?? Buffer.allocUnsafe(READ_CHUNK),
  );
}

/** Only once nothing (socket write, pending read) still uses them. */
export function giveBackReadBuffers(buffers: Buffer[]): void {
  for (const buffer of buffers)
    if (idle.length < MAX_IDLE_BUFFERS) idle.push(buffer);
}
