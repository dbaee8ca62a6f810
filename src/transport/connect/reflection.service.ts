import { createRegistry, toBinary, type DescFile, type Registry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, type ServiceImpl } from '@connectrpc/connect';
import type * as v1 from '../../gen/grpc/reflection/v1/reflection_pb.js';
import type * as v1alpha from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';

type Request = v1.ServerReflectionRequest;
// Plain objects, not messages, so the same answer initialises a v1 or a v1alpha response.
type Response =
  | { case: 'fileDescriptorResponse'; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: 'allExtensionNumbersResponse'; value: { baseTypeName: string } }
  | { case: 'listServicesResponse'; value: { service: { name: string }[] } }
  | { case: 'errorResponse'; value: { errorCode: number; errorMessage: string } };

/**
 * gRPC server reflection (v1 and v1alpha, which differ only in package name), answered from
 * the descriptors compiled into the generated code, so `buf curl` and `grpcurl` need no
 * .proto files. Each answer carries the file asked for and everything it imports.
 */
export class ReflectionResponder {
  private readonly registry: Registry;
  private readonly files = new Map<string, DescFile>();

  constructor(
    files: readonly DescFile[],
    private readonly serviceNames: readonly string[],
  ) {
    this.registry = createRegistry(...files);
    // Keyed by the .proto path that imports and file_by_filename use (DescFile.name drops ".proto").
    const index = (file: DescFile): void => {
      if (this.files.has(file.proto.name)) return;
      this.files.set(file.proto.name, file);
      file.dependencies.forEach(index);
    };
    files.forEach(index);
  }

  respond(req: Request): Response {
    const request = req.messageRequest;
    switch (request.case) {
      case 'listServices':
        return { case: 'listServicesResponse', value: { service: this.serviceNames.map((name) => ({ name })) } };
      case 'fileByFilename':
        return this.withImports(this.files.get(request.value), `file ${request.value}`);
      case 'fileContainingSymbol':
        return this.withImports(this.fileOfSymbol(request.value), `symbol ${request.value}`);
      case 'fileContainingExtension':
        return notFound(`extension ${request.value.extensionNumber} of ${request.value.containingType}`);
      case 'allExtensionNumbersOfType':
        if (this.registry.getMessage(request.value) === undefined) return notFound(`type ${request.value}`);
        return { case: 'allExtensionNumbersResponse', value: { baseTypeName: request.value } };
      default:
        return { case: 'errorResponse', value: { errorCode: Code.InvalidArgument, errorMessage: 'empty request' } };
    }
  }

  private fileOfSymbol(symbol: string): DescFile | undefined {
    const found = this.registry.get(symbol);
    if (found !== undefined) return found.file;
    // A method: "package.Service.Method".
    const service = this.registry.getService(symbol.slice(0, symbol.lastIndexOf('.')));
    return service?.methods.some((method) => `${service.typeName}.${method.name}` === symbol) ? service.file : undefined;
  }

  private withImports(file: DescFile | undefined, what: string): Response {
    if (file === undefined) return notFound(what);
    const seen = new Set<string>();
    const visit = (f: DescFile): DescFile[] => {
      if (seen.has(f.name)) return [];
      seen.add(f.name);
      return [f, ...f.dependencies.flatMap(visit)];
    };
    const fileDescriptorProto = visit(file).map((f) => toBinary(FileDescriptorProtoSchema, f.proto));
    return { case: 'fileDescriptorResponse', value: { fileDescriptorProto } };
  }
}

const notFound = (what: string): Response => ({
  case: 'errorResponse',
  value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
});

async function* answer<R extends Request | v1alpha.ServerReflectionRequest>(responder: ReflectionResponder, requests: AsyncIterable<R>) {
  for await (const req of requests) {
    yield { validHost: req.host, originalRequest: req, messageResponse: responder.respond(req as Request) };
  }
}

export const reflectionV1 = (responder: ReflectionResponder): ServiceImpl<typeof v1.ServerReflection> => ({
  serverReflectionInfo: (requests) => answer(responder, requests),
});

/** v1alpha messages have the same fields and numbers, so the v1 answer is re-read as v1alpha. */
export const reflectionV1alpha = (responder: ReflectionResponder): ServiceImpl<typeof v1alpha.ServerReflection> => ({
  serverReflectionInfo: (requests) => answer(responder, requests),
});
