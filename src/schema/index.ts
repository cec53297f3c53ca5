import { builder } from './builder.ts';
import './scalars.ts';
import './enums.ts';
import './errors.ts';
import './generation.ts';
import './extend-video.ts';
import './cancel-generation.ts';
import './webhook-attempt.ts';
import './delete-generation.ts';
import './viewer.ts';

/** The schema, served as an Apollo Federation v2 subgraph (it also works on its own). */
export const schema = builder.toSubGraphSchema({ linkUrl: 'https://specs.apollo.dev/federation/v2.6', sortSchema: false });
