export async function dashboardCommand(_argv: string[], _env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  out.write('stepguard dashboard: not available yet\n');
  return 2;
}
