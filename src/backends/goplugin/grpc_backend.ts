// A VolumeBackend whose effects a go-plugin backend carries out over berth.v1.VolumeBackend: one
// more implementation of the backend interface, so engine, machines and log stay as they are.
import { Buffer } from "node:buffer";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../transport/goplugin/gen/berth/v1/backend_pb.ts";
import { BackendError, BackendLostError, type VolumeBackend } from "../volume_backend.ts";
import type { RunningBackend } from "./launch.ts";
import type { BackendSupervisor } from "./supervisor.ts";

/** How long one effect may take in the backend before it counts as failed. */
const CALL_TIMEOUT_MS = 30_000;

/** Codes a call gets when the connection, not the backend, ended it. */
const TRANSPORT_FAILURES = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.CANCELLED,
  grpc.status.INTERNAL,
]);

/** How long a failed call waits to learn whether the backend's process is ending. */
const EXIT_GRACE_MS = 1000;

/** Whether `running`'s process has ended, or ends within EXIT_GRACE_MS. */
async function endsSoon(running: RunningBackend): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return await Promise.race([
    running.exited.then(() => true),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), EXIT_GRACE_MS)),
  ]).finally(() => clearTimeout(timer));
}

/** The volume backend served by the go-plugin backend `name` that `supervisor` keeps running. */
export function createGrpcBackend(name: string, supervisor: BackendSupervisor): VolumeBackend {
  async function call<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    request: MessageInitShape<I>,
  ): Promise<MessageShape<O>> {
    let running: RunningBackend;
    try {
      running = supervisor.current();
    } catch (error) {
      throw new BackendError((error as Error).message);
    }
    const reply = await new Promise<Uint8Array>((resolve, reject) =>
      running.client.makeUnaryRequest(
        `/${pb.VolumeBackend.typeName}/${method}`,
        (value: Uint8Array) => Buffer.from(value),
        (bytes: Buffer) => new Uint8Array(bytes),
        toBinary(input, create(input, request)),
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (error, value) => error ? reject(error as grpc.ServiceError) : resolve(value!),
      )
    ).catch(async (error: grpc.ServiceError) => {
      // A dropped connection may mean the process died with the call in its hands: then the
      // effect may or may not have happened, and only the backend, once back, can say.
      if (TRANSPORT_FAILURES.has(error.code) && await endsSoon(running)) {
        throw new BackendLostError(
          `volume backend "${name}" exited during ${method}; Berth settles the volume with it ` +
            `once it is back`,
          () => supervisor.ready().then(() => {}),
        );
      }
      const detail = error.details || error.message;
      throw new BackendError(`volume backend "${name}": ${method}: ${detail}`);
    });
    return fromBinary(output, reply);
  }

  return {
    // Options other than "backend" are the backend's to judge, at create.
    checkOptions() {},
    async create(volume, opts) {
      const options = Object.fromEntries(Object.entries(opts).filter(([key]) => key !== "backend"));
      const { mountpoint } = await call(
        "Create",
        pb.BackendCreateRequestSchema,
        pb.BackendMountpointSchema,
        {
          name: volume,
          options,
        },
      );
      return { mountpoint };
    },
    async mount(volume) {
      const { mountpoint } = await call(
        "Mount",
        pb.BackendVolumeSchema,
        pb.BackendMountpointSchema,
        {
          name: volume,
        },
      );
      return { mountpoint };
    },
    async unmount(volume) {
      await call("Unmount", pb.BackendVolumeSchema, pb.BackendDoneSchema, { name: volume });
    },
    async remove(volume) {
      await call("Remove", pb.BackendVolumeSchema, pb.BackendDoneSchema, { name: volume });
    },
    async survey() {
      const { volumes } = await call(
        "Survey",
        pb.BackendSurveyRequestSchema,
        pb.BackendSurveyResponseSchema,
        {},
      );
      const held = new Map(volumes.map((volume) => [volume.name, volume.mountpoint]));
      return {
        inspect: (volume: string) => ({
          present: held.has(volume),
          mountpoint: held.get(volume) ?? "",
        }),
      };
    },
  };
}
