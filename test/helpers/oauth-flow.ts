/**
 * The OAuth 2.1 authorization-code flow an MCP client runs against an authorization server (MCP
 * authorization spec; RFC 7591 registration, RFC 7636 PKCE, RFC 7662 introspection), one HTTP request
 * per step, driven by the SDK's client helpers (`@modelcontextprotocol/sdk/client/auth.js`:
 * `discoverAuthorizationServerMetadata`, `registerClient`, `startAuthorization`,
 * `exchangeAuthorization`). The user's consent is the server's: `/authorize` is followed as a browser
 * would, without following its redirect (the code is read from `Location`).
 *
 * Each step's outcome is returned, not thrown, so a test can assert where a flow breaks (behind a
 * round-robin load balancer, a replica that did not register the client refuses `/authorize`). The flow
 * stops at the first failed step.
 */
import { discoverAuthorizationServerMetadata, exchangeAuthorization, registerClient, startAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import type { AuthorizationServerMetadata, OAuthClientInformationFull } from '@modelcontextprotocol/sdk/shared/auth.js';

export type OAuthStepName = 'discover' | 'register' | 'authorize' | 'token' | 'introspect';

export interface OAuthStep {
  name: OAuthStepName;
  ok: boolean;
  /** The HTTP status where the step made its own request (`authorize`, `introspect`). */
  status?: number;
  /** What came back: the error message, or a short description of the success. */
  detail: string;
}

export interface OAuthFlowOptions {
  /** Where the client is sent back with the code (only parsed, never fetched). Default `http://127.0.0.1:1/callback`. */
  redirectUrl?: string;
  /** RFC 8707 resource indicator: the MCP server's URL. */
  resource?: URL;
  scope?: string;
  /**
   * The introspection endpoint (RFC 7662), `POST token=…` answering `{ active: true }` with status 200;
   * default `<issuer>/introspect`. `false`: no introspection step.
   */
  introspection?: URL | false;
}

export interface OAuthFlowResult {
  steps: OAuthStep[];
  /** Whether every step succeeded. */
  ok: boolean;
  client?: OAuthClientInformationFull;
  accessToken?: string;
  /** The cookies `/authorize` set (`Set-Cookie` name=value pairs joined as a `Cookie` header), as a browser would send them on; `''` when none. */
  cookie?: string;
}

/** Runs discovery, registration, authorization, token exchange and introspection against `issuer` (the authorization server's base URL). */
export async function runOAuthFlow(issuer: URL, options: OAuthFlowOptions = {}): Promise<OAuthFlowResult> {
  const redirectUrl = options.redirectUrl ?? 'http://127.0.0.1:1/callback';
  const steps: OAuthStep[] = [];
  const result = (extra: Partial<OAuthFlowResult> = {}): OAuthFlowResult => ({ steps, ok: steps.every((s) => s.ok) && steps.length === (options.introspection === false ? 4 : 5), ...extra });
  const step = async <T>(name: OAuthStepName, run: () => Promise<T>, describe: (v: T) => string): Promise<T | undefined> => {
    try {
      const v = await run();
      steps.push({ name, ok: true, detail: describe(v) });
      return v;
    } catch (err) {
      steps.push({ name, ok: false, status: (err as { status?: number }).status, detail: (err as Error).message });
      return undefined;
    }
  };

  const metadata = await step('discover', async () => required(await discoverAuthorizationServerMetadata(issuer), 'no authorization server metadata'), (m) => `issuer ${m.issuer}`);
  if (!metadata) return result();
  const client = await step(
    'register',
    () => registerClient(issuer, { metadata, clientMetadata: { client_name: 'mcp-migrate test client', redirect_uris: [redirectUrl], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post' } }),
    (c) => `client ${c.client_id}`,
  );
  if (!client) return result();
  const code = await step('authorize', () => authorize(issuer, metadata, client, redirectUrl, options), (c) => `code for ${c.verifier.length}-character verifier`);
  if (!code) return result({ client });
  const cookie = code.cookie;
  const tokens = await step(
    'token',
    () => exchangeAuthorization(issuer, { metadata, clientInformation: client, authorizationCode: code.code, codeVerifier: code.verifier, redirectUri: redirectUrl, resource: options.resource }),
    (t) => `${t.token_type} token`,
  );
  if (!tokens || options.introspection === false) return result({ client, accessToken: tokens?.access_token, cookie });
  await step('introspect', () => introspect(options.introspection || new URL('/introspect', issuer), tokens.access_token), (r) => `active, client ${r.client_id}`);
  return result({ client, accessToken: tokens.access_token, cookie });
}

/** `GET /authorize` as a browser sends it; the code from the redirect's `Location`, and the cookies it set. @throws an error with `status` when there is no code. */
async function authorize(issuer: URL, metadata: AuthorizationServerMetadata, client: OAuthClientInformationFull, redirectUrl: string, options: OAuthFlowOptions): Promise<{ code: string; verifier: string; cookie: string }> {
  const { authorizationUrl, codeVerifier } = await startAuthorization(issuer, { metadata, clientInformation: client, redirectUrl, scope: options.scope, resource: options.resource });
  const res = await fetch(authorizationUrl, { redirect: 'manual' });
  const location = res.headers.get('location');
  const code = location ? new URL(location, authorizationUrl).searchParams.get('code') : null;
  if (res.status !== 302 || !code) throw Object.assign(new Error(`/authorize answered ${res.status}${location ? ` to ${location}` : ''}: ${await res.text()}`), { status: res.status });
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  return { code, verifier: codeVerifier, cookie };
}

/** RFC 7662 introspection. @throws an error with `status` unless the token is active. */
async function introspect(endpoint: URL, token: string): Promise<{ client_id?: string }> {
  const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
  const body = (await res.json().catch(() => ({}))) as { active?: boolean; client_id?: string; error_description?: string };
  if (res.status !== 200 || body.active !== true) throw Object.assign(new Error(`introspection answered ${res.status}: ${body.error_description ?? JSON.stringify(body)}`), { status: res.status });
  return body;
}

function required<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(what);
  return v;
}
