// Preload for Portkey's gateway (`node --import ./bench/portkey-shim.ts …/start-server.js`).
//
// Why: @portkey-ai/gateway 1.15.2 asks for "@hono/node-server": "^1.3.3", and npm resolves
// that to 1.19.x today. That version's serve() replaces the global Response with a
// lightweight class which, given `new Response(body, fetchResponse)`, keeps the fetched
// response's Headers object, whose guard is "immutable". Portkey then appends its
// x-portkey-* headers to it and every streaming request fails with
// `TypeError: immutable` ("Something went wrong", HTTP 500). Without this shim the
// streaming cases of the benchmark cannot run against Portkey at all.
//
// What: when anything installs a global Response, wrap it so that an `init` which is a
// native Response is copied (status, statusText, a fresh Headers) before construction.
// That is what the WHATWG constructor does anyway; it costs one Headers copy per wrap.
const NativeResponse = globalThis.Response;
const define = Object.defineProperty;

type ResponseClass = typeof Response;

function wrap(Inner: ResponseClass): ResponseClass {
  return class extends Inner {
    constructor(body?: ConstructorParameters<ResponseClass>[0], init?: ResponseInit) {
      const copied = init instanceof NativeResponse ? { status: init.status, statusText: init.statusText, headers: new Headers(init.headers) } : init;
      super(body, copied);
    }
  };
}

Object.defineProperty = function definePatched<T>(target: T, key: PropertyKey, attributes: PropertyDescriptor & ThisType<unknown>): T {
  if (target === globalThis && key === 'Response' && typeof attributes.value === 'function' && attributes.value !== NativeResponse) {
    return define(target, key, { ...attributes, value: wrap(attributes.value as ResponseClass) });
  }
  return define(target, key, attributes);
};
