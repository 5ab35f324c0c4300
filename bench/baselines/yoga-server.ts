// The status-reads baseline: graphql-yoga with a one-field schema on node:http, all defaults.
import http from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';
import { listenAndAnnounce } from './announce.js';

const yoga = createYoga({
  schema: createSchema({ typeDefs: 'type Query { hello: String }', resolvers: { Query: { hello: () => 'world' } } }),
});
listenAndAnnounce(http.createServer(yoga));
