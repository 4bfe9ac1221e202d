export function startServer(options: {
  mainJs: string;
  cwd: string;
  env: Record<string, string>;
}): Promise<{
  port: number;
  pid: number;
  output(): string;
  stop(): Promise<{ code: number | null; signal: string | null }>;
}>;
