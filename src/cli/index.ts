#!/usr/bin/env node
/**
 * `mcp-migrate` command line. Commands are listed explicitly in `./commands/index.ts`.
 * Exit codes: see `./exit-codes.ts`.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commandsFor } from './commands/index.js';
import { ExitCode } from './exit-codes.js';
import { VERSION } from '../version.js';

const args = hideBin(process.argv);

await yargs(args)
  .scriptName('mcp-migrate')
  .usage('$0 <command> [options]\n\nRun stateful MCP servers behind any round-robin load balancer.')
  .command(await commandsFor(args))
  .demandCommand(1, 'Name a command: analyze, apply, proxy or probe.')
  .strict()
  .recommendCommands()
  .version(VERSION)
  .help()
  .alias('h', 'help')
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`mcp-migrate: ${msg}\nRun with --help for usage.\n`);
    process.exit(ExitCode.Usage);
  })
  .parseAsync();
