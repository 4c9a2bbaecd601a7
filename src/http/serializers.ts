import SerializerSelector from "@fastify/fast-json-stringify-compiler";

/**
 * Fastify's own response serializers (fast-json-stringify), each compiled the
 * first time its route answers with that status instead of all at start.
 * Compiling every route's schema for every status it documents (200 routes,
 * a dozen error statuses each) cost ~2 s of CPU in `app.ready()`: at every
 * server start, and at every app a test builds. A route answers with a few of
 * its statuses in practice, so most of that work was never used; the first
 * answer of each route and status pays for its own (a few ms), once per
 * process. The serializers themselves are Fastify's defaults, unchanged.
 */
export function lazySerializers(
  ...factoryArgs: Parameters<SerializerSelector.SerializerFactory>
): SerializerSelector.SerializerCompiler {
  const compile = SerializerSelector()(...factoryArgs);
  return (route) => {
    let serialize: SerializerSelector.Serializer | undefined;
    return (doc) => {
      serialize ??= compile(route);
      return serialize(doc);
    };
  };
}
