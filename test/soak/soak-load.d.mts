export interface SoakState {
  images: Map<string, { owner: string; expect: string; md5?: string; size?: number }>;
  requests: number;
  violations: string[];
}
export function runLoad(options: {
  port: number;
  seconds: number;
  clients?: number;
  maxBytes?: number;
  log?: (line: string) => void;
}): Promise<SoakState>;
export function checkInvariants(options: {
  port: number;
  storeDir: string;
  state: SoakState;
  graceMs?: number;
}): Promise<string[]>;
export const SOAK_STORAGE_QUOTA: number;
