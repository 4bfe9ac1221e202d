/**
 * Read buffers of file downloads (the file store and the image cache), shared
 * by every download of the process. Each download takes READ_SLOTS buffers of
 * READ_CHUNK bytes and gives them back when the socket is done with them;
 * up to MAX_IDLE_BUFFERS are kept for the next downloads. Fresh buffers per
 * download were the bulk of the service's memory under many concurrent
 * downloads: 16 downloads held 64 MiB that lay dead until a full GC.
 *
 * 512 KiB x 4 (2 MiB a download): 256 KiB x 4 used less CPU per GiB but sent
 * one 1 GiB download at 0.76x a bare createReadStream (too little in flight);
 * two slots stall the disk behind the socket.
 */
export const READ_CHUNK = 512 * 1024;
export const READ_SLOTS = 4;
/** Two downloads' worth (4 MiB): what stays allocated between bursts of downloads. */
const MAX_IDLE_BUFFERS = 8;

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
