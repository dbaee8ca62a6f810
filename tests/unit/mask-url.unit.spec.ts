import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from '../../src/infrastructure/config/load-config.js';
import { maskNatsUrl, maskUrlPassword } from '../../src/infrastructure/config/mask-url.js';

describe('connection URLs shown to people', () => {
  it('masks a database password, keeps user, host and database', () => {
    expect(maskUrlPassword('postgres://app:s3cr3t@db.internal:5432/identity')).toBe('postgres://app:********@db.internal:5432/identity');
    expect(maskUrlPassword('postgres://app@db.internal/identity')).toBe('postgres://app@db.internal/identity');
  });

  it('masks NATS passwords and tokens in every listed server', () => {
    const masked = maskNatsUrl('nats://svc:pa55@n1:4222,nats://t0ken@n2:4222,nats://n3:4222');
    expect(masked).toBe('nats://svc:********@n1:4222,nats://********@n2:4222,nats://n3:4222');
    expect(masked).not.toMatch(/pa55|t0ken/);
  });

  it('shows nothing of a value it cannot parse', () => {
    expect(maskNatsUrl('not a url with s3cr3t')).toBe('********');
  });

  it('identity config masks NATS_URL credentials', () => {
    const config = loadConfig({ NATS_URL: 'nats://svc:pa55@n1:4222' });
    expect(JSON.stringify(describeConfig(config))).not.toContain('pa55');
  });
});
