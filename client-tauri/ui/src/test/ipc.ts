// Test helper: a fake of the Tauri IPC boundary, i.e. the generated bindings module. Every
// command name resolves to a handler set by the test (a missing one answers an error, as
// an unknown command would); events are emitters the test fires. Use it with
//   const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
//   vi.mock("../bindings", async (importOriginal) => {
//     const m = await import("../test/ipc");
//     ipc.backend = m.fakeBackend(await importOriginal());
//     return ipc.backend.module;
//   });

type Handler = (...args: never[]) => unknown;
type Listener = (e: { payload: unknown }) => void;

export interface FakeBackend {
  module: { commands: Record<string, unknown>; events: Record<string, unknown> };
  /** Sets what a command answers (its data; throw an AppError-shaped object to fail). */
  on(name: string, handler: Handler): void;
  /** The same for a command that cannot fail, whose binding returns its value bare. */
  plain(name: string, handler: Handler): void;
  /** Every call so far: [command, args]. */
  calls: [string, unknown[]][];
  callsTo(name: string): unknown[][];
  emit(event: string, payload: unknown): void;
  reset(): void;
}

export class IpcError {
  constructor(readonly error: unknown) {}
}

/** `real` is the real bindings module: its constants (LIMITS, ...) are kept. */
export function fakeBackend(real: object = {}): FakeBackend {
  const handlers = new Map<string, Handler>();
  const plain = new Set<string>();
  const listeners = new Map<string, Set<Listener>>();
  const calls: [string, unknown[]][] = [];
  const commands = new Proxy(
    {},
    {
      get(_t, name) {
        if (typeof name !== "string" || name === "then") return undefined;
        return async (...args: unknown[]) => {
          calls.push([name, args]);
          const h = handlers.get(name);
          if (!h) {
            return {
              status: "error",
              error: { kind: "server", message: `no fake for command ${name}` },
            };
          }
          try {
            const data = await (h as (...a: unknown[]) => unknown)(...args);
            return plain.has(name) ? data : { status: "ok", data };
          } catch (e) {
            if (e instanceof IpcError) return { status: "error", error: e.error };
            throw e;
          }
        };
      },
    },
  );
  const event = (name: string) => ({
    listen: async (cb: Listener) => {
      let set = listeners.get(name);
      if (!set) {
        set = new Set();
        listeners.set(name, set);
      }
      set.add(cb);
      return () => set?.delete(cb);
    },
  });
  const events = {
    callEvent: event("callEvent"),
    micLevel: event("micLevel"),
    messengerEvent: event("messengerEvent"),
    transferEvent: event("transferEvent"),
  };
  return {
    module: { ...real, commands, events },
    on: (name, h) => {
      plain.delete(name);
      handlers.set(name, h);
    },
    plain: (name, h) => {
      plain.add(name);
      handlers.set(name, h);
    },
    calls,
    callsTo: (name) => calls.filter(([n]) => n === name).map(([, a]) => a),
    emit(name, payload) {
      for (const cb of listeners.get(name) ?? []) cb({ payload });
    },
    reset() {
      handlers.clear();
      plain.clear();
      calls.length = 0;
    },
  };
}

/** Lets promises and queued microtasks run. */
export const flush = async (times = 3) => {
  for (let i = 0; i < times; i++) await new Promise((r) => setTimeout(r, 0));
};
