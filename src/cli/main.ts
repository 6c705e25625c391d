#!/usr/bin/env node
/**
 * The `stepguard` command. Every subcommand returns an exit code (0 ok, 1 findings/failures, 2 usage)
 * and prints to stdout; `--json` gives machine-readable output where it makes sense.
 */
import { doctorCommand } from './doctor.js';
import { rulesCommand } from './rules.js';
import { agentVersion } from '../telemetry/telemetry.js';

const HELP = `stepguard — runtime protection for Node.js

Usage:
  node --require stepguard/register app.js     protect an app (no code changes)
  stepguard <command> [options]

Commands:
  rules lint [paths…]        validate rule files (default: shipped rules + STEPGUARD_RULES)
  rules test [paths…]        run the examples written inside each rule
  rules explain              show which rules and detectors fire for an event (see --help)
  doctor                     which modules would be protected at which versions, rules, settings
  enroll <user>              enroll a user for step-up (TOTP): prints the otpauth:// URI and a QR code
                             (--recovery-codes: issue ten new recovery codes instead)
  findings [summary]         the findings log as a table (filters, --follow) or a summary per rule/route
  accounts list|show|clear    accounts flagged by adaptive rules (action flag)
  findings resolve --route P mark a route's vulnerability findings resolved (adaptive vulnerable_route)
  dashboard                  a local page over the findings log (127.0.0.1, token printed at start)
  help [command]             this text, or a command's help

Options:
  --json                     machine-readable output (rules, doctor)
  --version                  print the version
`;

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      if (rest[0] === 'rules') return rulesCommand(['--help'], env, out);
      if (rest[0] === 'doctor') return doctorCommand(['--help'], env, out);
      if (rest[0] === 'enroll') return enroll(['--help'], env, out);
      if (rest[0] === 'findings') return findings(['--help'], env, out);
      if (rest[0] === 'dashboard') return dashboard(['--help'], env, out);
      out.write(HELP);
      return command === undefined ? 2 : 0;
    case '--version':
    case '-v':
      out.write(`${agentVersion()}\n`);
      return 0;
    case 'rules':
      return rulesCommand(rest, env, out);
    case 'doctor':
      return doctorCommand(rest, env, out);
    case 'enroll':
      return enroll(rest, env, out);
    case 'findings':
      if (rest[0] === 'resolve') return (await import('./accounts.js')).resolveCommand(rest.slice(1), env, out);
      return findings(rest, env, out);
    case 'accounts':
      return (await import('./accounts.js')).accountsCommand(rest, env, out);
    case 'dashboard':
      return dashboard(rest, env, out);
    default:
      out.write(`stepguard: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

async function enroll(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  // Loaded lazily: it pulls in the store backends.
  const { enrollCommand } = await import('./enroll.js');
  return enrollCommand(argv, env, out);
}

async function findings(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const { findingsCommand } = await import('./findings.js');
  return findingsCommand(argv, env, out);
}

async function dashboard(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const { dashboardCommand } = await import('../dashboard/server.js');
  return dashboardCommand(argv, env, out);
}

if (require.main === module) {
  // `stepguard doctor | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`stepguard: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
