// Writes schema.graphql at the project root from the Pothos schema.
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../db/schema-engine.js';
import { printSortedSchema } from './schema.js';

fs.writeFileSync(path.join(projectRoot, 'schema.graphql'), printSortedSchema());
console.log('wrote schema.graphql');
