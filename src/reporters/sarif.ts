/**
 * `sarif`: a SARIF 2.1.0 log (OASIS Static Analysis Results Interchange Format) for code-scanning
 * services such as GitHub code scanning. Built with node-sarif-builder.
 *
 * - one run; `tool.driver.rules[]` comes from the rule metadata (id = rule id), sorted by id;
 * - result locations are relative POSIX URIs under the `%SRCROOT%` base (`originalUriBaseIds` maps it
 *   to the analyzed root), with 1-based regions (columns in UTF-16 code units, as TypeScript counts);
 * - `partialFingerprints` hash the rule id, file and symbol, never the line, so a finding keeps its
 *   identity when code above it moves;
 * - results are sorted (file, line, column, rule id), so the same input always gives the same bytes;
 * - a covered finding (`coveredBy`) has its cover as `relatedLocations[0]` and in `properties.coveredBy`;
 * - analysis warnings become `invocations[0].toolExecutionNotifications`.
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { SarifBuilder, SarifResultBuilder, SarifRuleBuilder, SarifRunBuilder } from 'node-sarif-builder';
import type { Artifact, Location, Notification, Result } from 'sarif';
import { findingRef } from '../analyzer/cover.js';
import type { Finding, FindingRef, RuleMeta } from '../analyzer/types.js';
import { TOOL_NAME } from '../version.js';
import { compareFindings, compareStrings, describeFix, parseFix } from './describe.js';
import type { Reporter } from './types.js';

/** `uriBaseId` every result location is relative to. */
export const SRCROOT = '%SRCROOT%';
/** Key of our entry in `partialFingerprints` (versioned: change the hash, bump the key). */
export const FINGERPRINT_KEY = 'mcpMigrate/v1';
/** `tool.driver.informationUri`. */
export const INFORMATION_URI = 'https://github.com/mcp-migrate/mcp-migrate';
const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

/** Renders the SARIF log as pretty-printed JSON (two spaces). */
export const sarif: Reporter = (result, ctx) => {
  const findings = [...result.findings].sort(compareFindings);
  const metas = ruleDescriptors(ctx.rules, findings);
  const uris = [...new Set(findings.map((f) => f.file))].sort(compareStrings);

  const run = new SarifRunBuilder({
    // Declared up front, with their base id; the builder indexes results against them.
    artifacts: uris.map((file): Artifact => ({ location: { uri: encodePath(file), uriBaseId: SRCROOT }, ...language(file) })),
    originalUriBaseIds: { [SRCROOT]: { uri: directoryUri(result.root) } },
    columnKind: 'utf16CodeUnits',
    invocations: [
      {
        executionSuccessful: true,
        toolExecutionNotifications: result.warnings.map(
          (w): Notification => ({
            level: 'warning',
            message: { text: w.message },
            ...(w.file === undefined
              ? {}
              : { locations: [{ physicalLocation: { artifactLocation: { uri: encodePath(w.file), uriBaseId: SRCROOT } } }] }),
          }),
        ),
      },
    ],
  }).initSimple({ toolDriverName: TOOL_NAME, toolDriverVersion: ctx.version, url: INFORMATION_URI });
  run.run.tool.driver.semanticVersion = ctx.version;

  for (const meta of metas) {
    const fix = describeFix(meta.fix);
    const rule = new SarifRuleBuilder({
      name: toPascalCase(meta.id),
      help: { text: `${meta.description}\nFix: ${fix}.${meta.docsUrl ? `\nDocs: ${meta.docsUrl}` : ''}` },
      defaultConfiguration: { level: meta.severity },
      properties: { category: meta.category, fix: meta.fix, fixKind: parseFix(meta.fix).kind, tags: ['mcp', meta.category] },
    }).initSimple({
      ruleId: meta.id,
      shortDescriptionText: meta.description,
      fullDescriptionText: `${meta.description} Category: ${meta.category}. Default fix: ${fix}.`,
      ...(meta.docsUrl ? { helpUri: meta.docsUrl } : {}),
    });
    run.addRule(rule);
  }

  const seen = new Map<string, number>();
  for (const f of findings) {
    const { kind, transform } = parseFix(f.fix);
    const builder = new SarifResultBuilder({
      partialFingerprints: { [FINGERPRINT_KEY]: fingerprint(f, seen) },
      properties: {
        category: f.category,
        symbol: f.symbol,
        fix: f.fix,
        fixKind: kind,
        ...(transform === undefined ? {} : { transform }),
        // The bundled third-party package the result is in (`name`, and `version` when the bundle says it).
        ...(f.dependency ? { dependency: f.dependency.version ? { name: f.dependency.name, version: f.dependency.version } : { name: f.dependency.name } } : {}),
        // The finding this one is the same state as (rule id, file, 1-based line and column, symbol).
        ...(f.coveredBy ? { coveredBy: findingRef(f.coveredBy) } : {}),
      },
      ...(f.coveredBy ? { relatedLocations: [coverLocation(f.coveredBy)] } : {}),
    }).initSimple({
      level: f.severity satisfies Result.level,
      messageText: f.message,
      ruleId: f.ruleId,
      startLine: Math.max(1, f.line),
      startColumn: Math.max(1, f.column),
      endLine: Math.max(1, f.endLine, f.line),
      endColumn: Math.max(1, f.endColumn),
    });
    builder.setLocationArtifactUri({ uri: encodePath(f.file), uriBaseId: SRCROOT });
    run.addResult(builder);
  }

  const log = new SarifBuilder({ $schema: SARIF_SCHEMA, version: '2.1.0' });
  log.addRun(run);
  return log.buildSarifJsonString({ indent: true });
};

/** A covered result's `relatedLocations` entry: where its cover is, and why it is related. */
function coverLocation(ref: FindingRef): Location {
  return {
    id: 1,
    physicalLocation: {
      artifactLocation: { uri: encodePath(ref.file), uriBaseId: SRCROOT },
      region: { startLine: Math.max(1, ref.line), startColumn: Math.max(1, ref.column) },
    },
    message: { text: `Covered by \`${ref.symbol}\` (${ref.ruleId}): the same state, fixed with it.` },
  };
}

/**
 * Every rule from the metadata, plus a minimal descriptor for any rule id a finding carries that the
 * metadata lacks (so every result's `ruleIndex` resolves). Sorted by id.
 */
function ruleDescriptors(rules: readonly RuleMeta[], findings: Finding[]): RuleMeta[] {
  const byId = new Map(rules.map((r) => [r.id, r]));
  for (const f of findings) {
    if (!byId.has(f.ruleId)) {
      byId.set(f.ruleId, {
        id: f.ruleId,
        category: f.category,
        severity: f.severity,
        description: f.ruleId,
        fix: f.fix,
        docsUrl: '',
      });
    }
  }
  return [...byId.values()].sort((a, b) => compareStrings(a.id, b.id));
}

/**
 * SHA-256 (hex) of rule id, file and symbol, NUL-separated. Findings sharing all three (the same
 * symbol reported twice in a file) also hash their occurrence number in file order, so fingerprints
 * stay unique without involving line numbers.
 */
function fingerprint(f: Finding, seen: Map<string, number>): string {
  const key = `${f.ruleId}\0${f.file}\0${f.symbol}`;
  const n = seen.get(key) ?? 0;
  seen.set(key, n + 1);
  return createHash('sha256')
    .update(n === 0 ? key : `${key}\0${n}`)
    .digest('hex');
}

/** Relative POSIX path → relative URI reference (each segment percent-encoded). */
function encodePath(file: string): string {
  return file.replace(/\\/g, '/').split('/').map(encodeURIComponent).join('/');
}

/** `file:` URI of a directory, with the trailing slash SARIF requires of a base URI. */
function directoryUri(dir: string): string {
  const href = pathToFileURL(dir).href;
  return href.endsWith('/') ? href : `${href}/`;
}

function language(file: string): Pick<Artifact, 'sourceLanguage'> {
  if (/\.[cm]?tsx?$/.test(file)) return { sourceLanguage: 'typescript' };
  if (/\.[cm]?jsx?$/.test(file)) return { sourceLanguage: 'javascript' };
  return {};
}

/** `session-registry-map` → `SessionRegistryMap` (SARIF `name` is meant to be an identifier-like label). */
function toPascalCase(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
}
