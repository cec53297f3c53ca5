import { writeFileSync } from 'node:fs';
import { printSubgraphSchema } from '@apollo/subgraph';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../src/schema/index.ts';

/**
 * Prints the Pothos schema: schema.graphql is the public contract clients see; subgraph.graphql
 * carries the federation directives a gateway composes from.
 */
writeFileSync(new URL('../schema.graphql', import.meta.url), `${printSchema(lexicographicSortSchema(schema))}\n`);
writeFileSync(new URL('../subgraph.graphql', import.meta.url), `${printSubgraphSchema(lexicographicSortSchema(schema))}\n`);
console.log('wrote schema.graphql and subgraph.graphql');
