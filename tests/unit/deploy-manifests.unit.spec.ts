/**
 * The deployment kit in deploy/ against the service it deploys (issue 17): what an operator would
 * otherwise find out from a pod that never gets ready. The service ignores environment variables
 * it does not know, so a misspelt name in a manifest would silently fall back to a default; the
 * ports, probe paths, the image's entrypoint and the token issuer must agree with the code.
 * Pure file parsing: no cluster, no network.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { configSchema } from '../../src/infrastructure/config/config.schema.js';
import { loadConfig } from '../../src/infrastructure/config/load-config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEPLOY = path.join(ROOT, 'deploy');
/** The contract's default for MANAGEMENT_PORT, until the schema has the variable. */
const CONTRACT_MANAGEMENT_PORT = 50_052;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are loosely typed YAML
type Doc = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/** Every YAML document of a file; a syntax error fails the test naming the file. */
function parseFile(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.map((doc) => {
    expect(doc.errors, `${path.relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`).toEqual([]);
    return doc.toJS() as Doc;
  });
}

const manifestFiles = [...yamlFiles(path.join(DEPLOY, 'kubernetes')), ...yamlFiles(path.join(DEPLOY, 'istio'))];
const manifests = manifestFiles.flatMap((file) => parseFile(file).map((doc) => ({ file: path.relative(ROOT, file), doc })));
const byKind = (kind: string) => manifests.filter((m) => m.doc['kind'] === kind).map((m) => m.doc);
const one = (kind: string, name: string): Doc => {
  const found = byKind(kind).filter((doc) => doc['metadata']?.['name'] === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0]!;
};

const schemaNames = new Set(Object.keys(configSchema.shape));
const defaults = loadConfig({});
const managementPort = 'MANAGEMENT_PORT' in defaults ? Number((defaults as Record<string, unknown>)['MANAGEMENT_PORT']) : CONTRACT_MANAGEMENT_PORT;

const deployment = one('Deployment', 'identity');
const job = one('Job', 'identity-migrate-0-1-0');
const configMap = one('ConfigMap', 'identity-env');
const secret = one('Secret', 'identity-secrets');
const podSpec = deployment['spec']['template']['spec'] as Doc;
const container = (podSpec['containers'] as Doc[]).find((c) => c['name'] === 'identity')!;
const containerPort = (name: string): number | undefined => (container['ports'] as Doc[]).find((p) => p['name'] === name)?.['containerPort'];
const workloads = [deployment, job];
const containersOf = (workload: Doc): Doc[] => workload['spec']['template']['spec']['containers'];

/** The Dockerfile's exec-form ENTRYPOINT and CMD, as JSON arrays. */
function dockerfileInstruction(name: 'ENTRYPOINT' | 'CMD'): string[] {
  const match = new RegExp(`^${name} (\\[.*\\])$`, 'm').exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  expect(match, `Dockerfile ${name} in exec form`).not.toBeNull();
  return JSON.parse(match![1]!) as string[];
}

/** The paths the admin server routes, read from its route table. */
function adminRoutes(): string[] {
  const source = readFileSync(path.join(ROOT, 'src/transport/http/admin-server.ts'), 'utf8');
  const table = /this\.routes = \{([\s\S]*?)\n {4}\};/.exec(source);
  expect(table, 'the route table of admin-server.ts').not.toBeNull();
  return [...table![1]!.matchAll(/^\s+'(\/[^']*)':/gm)].map((m) => m[1]!);
}

/** The environment a container of `workload` gets: the ConfigMap, then env (secrets from the example Secret). */
function environmentOf(workload: Doc): Record<string, string> {
  const env: Record<string, string> = {};
  for (const c of containersOf(workload)) {
    for (const from of c['envFrom'] ?? []) {
      expect(from['configMapRef']?.['name']).toBe(configMap['metadata']['name']);
      Object.assign(env, configMap['data']);
    }
    for (const variable of c['env'] ?? []) {
      const ref = variable['valueFrom']?.['secretKeyRef'];
      if (ref !== undefined) {
        expect(ref['name']).toBe(secret['metadata']['name']);
        expect(Object.keys(secret['stringData']), `${variable['name']} in the example Secret`).toContain(ref['key']);
        // The example's value is a placeholder; a real key is 32 random bytes.
        env[variable['name']] = variable['name'] === 'KEY_ENCRYPTION_KEY' ? randomBytes(32).toString('base64') : secret['stringData'][ref['key']];
      } else {
        env[variable['name']] = String(variable['value']);
      }
    }
  }
  return env;
}

describe('deploy/: every file parses', () => {
  it.each(yamlFiles(DEPLOY).map((file) => [path.relative(ROOT, file)]))('%s', (file) => {
    const docs = parseFile(path.join(ROOT, file));
    expect(docs.length).toBeGreaterThan(0);
    if (file.startsWith('deploy/kubernetes/') || file.startsWith('deploy/istio/')) {
      for (const doc of docs) expect(doc, file).toMatchObject({ apiVersion: expect.any(String), kind: expect.any(String) });
    }
  });
});

describe('environment variables', () => {
  const named = [
    ...Object.keys(configMap['data']).map((name) => ['ConfigMap identity-env', name]),
    ...workloads.flatMap((w) => containersOf(w).flatMap((c) => (c['env'] ?? []).map((v: Doc) => [`${w['kind']} ${c['name']}`, v['name']]))),
  ];

  it.each(named)('%s sets %s, a variable of the config schema', (_where, name) => {
    expect([...schemaNames]).toContain(name);
  });

  it.each(workloads.map((w) => [w['kind'], w]))('the %s environment is a valid production configuration', (_kind, workload) => {
    const config = loadConfig(environmentOf(workload));
    expect(config.NODE_ENV).toBe('production');
    expect(config.embeddedDatabase).toBe(false);
    // Migrations are the Job's, never a replica's at start.
    expect(config.migrateOnStart).toBe(false);
  });

  it('KEY_ENCRYPTION_KEY and DATABASE_URL come from the Secret, never from the ConfigMap', () => {
    for (const name of ['KEY_ENCRYPTION_KEY', 'DATABASE_URL']) {
      expect(Object.keys(configMap['data'])).not.toContain(name);
      for (const workload of workloads) {
        const variable = containersOf(workload)[0]!['env'].find((v: Doc) => v['name'] === name);
        expect(variable?.['valueFrom']?.['secretKeyRef'], `${workload['kind']} ${name}`).toBeDefined();
      }
    }
  });

  it('HASH_WORKERS leaves a core of the CPU request to the event loop', () => {
    const config = loadConfig(environmentOf(deployment));
    const request = String(container['resources']['requests']['cpu']);
    const cpu = request.endsWith('m') ? Number(request.slice(0, -1)) / 1000 : Number(request);
    expect(config.HASH_WORKERS + 1).toBeLessThanOrEqual(cpu);
  });
});

describe('ports', () => {
  const config = loadConfig(environmentOf(deployment));

  it('the container ports are the configured ones (and the schema defaults)', () => {
    expect(containerPort('grpc')).toBe(config.PORT);
    expect(containerPort('grpc')).toBe(defaults.PORT);
    expect(containerPort('http-admin')).toBe(config.ADMIN_PORT);
    expect(containerPort('http-admin')).toBe(defaults.ADMIN_PORT);
    expect(containerPort('grpc-management')).toBe(managementPort);
  });

  it('the Dockerfile exposes the same ports', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const exposed = /^EXPOSE (.+)$/m.exec(dockerfile)![1]!.split(/\s+/).map(Number);
    expect(exposed).toEqual(expect.arrayContaining([config.PORT, config.ADMIN_PORT]));
  });

  it.each(byKind('Service').map((s) => [s['metadata']['name'], s]))('Service %s targets named container ports of the pods it selects', (_name, service) => {
    expect(deployment['spec']['template']['metadata']['labels']).toMatchObject(service['spec']['selector']);
    for (const port of service['spec']['ports']) {
      expect(typeof port['targetPort'], 'targetPort by name').toBe('string');
      expect(containerPort(port['targetPort']), `${port['targetPort']} is a container port`).toBeDefined();
      expect(port['port']).toBe(containerPort(port['targetPort']));
    }
  });

  it('the API and management Services speak gRPC (appProtocol)', () => {
    expect(one('Service', 'identity')['spec']['ports']).toEqual([expect.objectContaining({ port: config.PORT, appProtocol: 'grpc' })]);
    expect(one('Service', 'identity-management')['spec']['ports']).toEqual([expect.objectContaining({ port: managementPort, appProtocol: 'grpc' })]);
    expect(one('Service', 'identity-admin')['spec']['ports']).toEqual([expect.objectContaining({ port: config.ADMIN_PORT })]);
  });
});

describe('the Deployment', () => {
  it('runs the image entrypoint with `serve` in exec form', () => {
    expect(container['command']).toEqual(dockerfileInstruction('ENTRYPOINT'));
    expect(container['args']).toEqual(dockerfileInstruction('CMD'));
  });

  it('probes the admin port: liveness /healthz, readiness /readyz, both routes of the admin server', () => {
    const routes = adminRoutes();
    expect(container['livenessProbe']['httpGet']).toEqual({ path: '/healthz', port: 'http-admin' });
    expect(container['readinessProbe']['httpGet']).toEqual({ path: '/readyz', port: 'http-admin' });
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const { path: probePath, port } = container[probe]['httpGet'];
      expect(routes, probe).toContain(probePath);
      expect(containerPort(port), probe).toBe(loadConfig(environmentOf(deployment)).ADMIN_PORT);
    }
  });

  it('runs as a non-root user without privilege escalation', () => {
    expect(podSpec['securityContext']).toMatchObject({ runAsNonRoot: true });
    expect(podSpec['securityContext']['runAsUser']).toBeGreaterThan(0);
    expect(container['securityContext']).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  });

  it('gives the process its shutdown grace (and the preStop pause) before Kubernetes kills it', () => {
    const config = loadConfig(environmentOf(deployment));
    const preStop = container['lifecycle']?.['preStop']?.['sleep']?.['seconds'] ?? 0;
    expect(podSpec['terminationGracePeriodSeconds']).toBeGreaterThan(config.SHUTDOWN_GRACE_SECONDS + preStop);
  });

  it('has requests and a memory limit, and a PodDisruptionBudget over the same pods', () => {
    expect(container['resources']['requests']).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
    expect(container['resources']['limits']['memory']).toBeDefined();
    const pdb = one('PodDisruptionBudget', 'identity');
    expect(pdb['spec']['selector']['matchLabels']).toEqual(deployment['spec']['selector']['matchLabels']);
    expect(pdb['spec']['maxUnavailable']).toBeLessThan(deployment['spec']['replicas']);
  });
});

describe('the migration Job', () => {
  const [migrate] = containersOf(job);

  it('runs `migrate up` through the image entrypoint, with the image of the Deployment', () => {
    expect(migrate!['command']).toEqual(dockerfileInstruction('ENTRYPOINT'));
    expect(migrate!['args']).toEqual(['migrate', 'up']);
    expect(migrate!['image']).toBe(container['image']);
    expect(job['spec']['template']['spec']['restartPolicy']).toBe('Never');
  });
});

describe('Istio', () => {
  const config = loadConfig(environmentOf(deployment));

  it('RequestAuthentication trusts the service issuer and audience and reads the JWKS from the admin Service', () => {
    const [rule, ...others] = one('RequestAuthentication', 'identity-jwt')['spec']['jwtRules'];
    expect(others).toEqual([]);
    expect(rule['issuer']).toBe(config.TOKEN_ISSUER);
    expect(rule['issuer']).toBe(defaults.TOKEN_ISSUER);
    expect(rule['audiences']).toEqual([config.TOKEN_AUDIENCE]);
    expect(rule['audiences']).toEqual([defaults.TOKEN_AUDIENCE]);
    const jwks = new URL(rule['jwksUri']);
    const admin = one('Service', 'identity-admin');
    expect(jwks.hostname).toBe(`${admin['metadata']['name']}.${admin['metadata']['namespace']}.svc.cluster.local`);
    expect(Number(jwks.port)).toBe(config.ADMIN_PORT);
    expect(adminRoutes()).toContain(jwks.pathname);
  });

  it('the ext_authz provider calls the API Service on the API port and fails closed; a CUSTOM policy uses it', () => {
    const [provider] = one('IstioOperator', 'identity-ext-authz')['spec']['meshConfig']['extensionProviders'];
    const api = one('Service', 'identity');
    expect(provider['envoyExtAuthzGrpc']).toMatchObject({
      service: `${api['metadata']['name']}.${api['metadata']['namespace']}.svc.cluster.local`,
      port: config.PORT,
      failOpen: false,
      timeout: expect.stringMatching(/^\d+(\.\d+)?m?s$/),
    });
    const custom = byKind('AuthorizationPolicy').filter((p) => p['spec']['action'] === 'CUSTOM');
    expect(custom.length).toBeGreaterThan(0);
    for (const policy of custom) expect(policy['spec']['provider']['name']).toBe(provider['name']);
  });

  it('the management port admits only named service accounts', () => {
    const deny = one('AuthorizationPolicy', 'identity-management-callers')['spec'];
    expect(deny['action']).toBe('DENY');
    const [rule] = deny['rules'];
    expect(rule['to'][0]['operation']['ports']).toEqual([String(managementPort)]);
    const callers: string[] = rule['from'][0]['source']['notPrincipals'];
    expect(callers.length).toBeGreaterThan(0);
    for (const principal of callers) expect(principal).toMatch(/^[^*]+\/ns\/[^/*]+\/sa\/[^/*]+$/);
    // The ALLOW policy of the same pods admits the same accounts, and nobody else, on that port.
    const allow = one('AuthorizationPolicy', 'identity-ports')['spec']['rules'].filter((r: Doc) =>
      r['to']?.some((t: Doc) => t['operation']['ports']?.includes(String(managementPort))),
    );
    expect(allow.map((r: Doc) => r['from'][0]['source']['principals'])).toEqual([callers]);
  });

  it('every port the pods serve is allowed to someone, and the admin port accepts plain text (probes, Prometheus, istiod)', () => {
    const allowed = one('AuthorizationPolicy', 'identity-ports')['spec']['rules'].flatMap((r: Doc) => r['to'].flatMap((t: Doc) => t['operation']['ports']));
    expect(allowed.sort()).toEqual((container['ports'] as Doc[]).map((p) => String(p['containerPort'])).sort());
    const adminPaths = one('AuthorizationPolicy', 'identity-ports')['spec']['rules'].find((r: Doc) => r['to'][0]['operation']['ports'].includes(String(config.ADMIN_PORT)))['to'][0]['operation']['paths'];
    expect(adminRoutes().sort()).toEqual([...adminPaths].sort());
    expect(one('PeerAuthentication', 'identity')['spec']['portLevelMtls']).toEqual({ [config.ADMIN_PORT]: { mode: 'PERMISSIVE' } });
  });
});

describe('NATS (values for the official chart)', () => {
  const [values] = parseFile(path.join(DEPLOY, 'nats/values.yaml'));

  it('is a 3-node JetStream cluster with file storage, the stream is replicated on all three, and NATS_URL lists them', () => {
    expect(values!['config']['cluster']).toMatchObject({ enabled: true, replicas: 3 });
    expect(values!['config']['jetstream']).toMatchObject({ enabled: true, fileStore: { enabled: true } });
    const config = loadConfig(environmentOf(deployment));
    expect(config.NATS_STREAM_REPLICAS).toBe(values!['config']['cluster']['replicas']);
    const servers = config.NATS_URL.split(',');
    expect(servers.map((s) => new URL(s).hostname.split('.').slice(0, 2).join('.'))).toEqual(['nats-0.nats-headless', 'nats-1.nats-headless', 'nats-2.nats-headless']);
  });
});
