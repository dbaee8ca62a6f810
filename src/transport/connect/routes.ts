import type { ConnectRouter } from '@connectrpc/connect';
import { file_google_rpc_error_details } from '../../gen/google/rpc/error_details_pb.js';
import { Health, file_grpc_health_v1_health } from '../../gen/grpc/health/v1/health_pb.js';
import * as reflectionV1Pb from '../../gen/grpc/reflection/v1/reflection_pb.js';
import * as reflectionV1alphaPb from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { IdentityService, file_identity_v1_identity } from '../../gen/identity/v1/identity_pb.js';
import { file_identity_v1_events } from '../../gen/identity/v1/events_pb.js';
import type { Readiness } from '../../infrastructure/observability/readiness.js';
import { HealthServiceHandler } from './health.service.js';
import { IdentityServiceHandler, type IdentityUseCases } from './identity.service.js';
import { ReflectionResponder, reflectionV1, reflectionV1alpha } from './reflection.service.js';

export interface RouteDeps {
  readonly useCases: IdentityUseCases;
  readonly readiness: Readiness;
}

const SERVED = [IdentityService, Health, reflectionV1Pb.ServerReflection, reflectionV1alphaPb.ServerReflection];

/** Every service on the API port, registered in one place. */
export function routes(deps: RouteDeps) {
  const files = [
    file_identity_v1_identity,
    file_identity_v1_events,
    file_grpc_health_v1_health,
    reflectionV1Pb.file_grpc_reflection_v1_reflection,
    reflectionV1alphaPb.file_grpc_reflection_v1alpha_reflection,
    // The error details we send, so that tools can decode them without the .proto files.
    file_google_rpc_error_details,
  ];
  const responder = new ReflectionResponder(files, SERVED.map((service) => service.typeName));
  return (router: ConnectRouter) => {
    router.service(IdentityService, new IdentityServiceHandler(deps.useCases));
    router.service(Health, new HealthServiceHandler(deps.readiness));
    router.service(reflectionV1Pb.ServerReflection, reflectionV1(responder));
    router.service(reflectionV1alphaPb.ServerReflection, reflectionV1alpha(responder));
  };
}
