import { builder } from './builder.js';
import './scalars.js';
import './enums.js';
import './errors.js';
import './generation.js';
import './extend-video.js';
import './cancel-generation.js';
import './webhook-attempt.js';
import './delete-generation.js';
import './viewer.js';

/** The schema, served as an Apollo Federation v2 subgraph (it also works on its own). */
export const schema = builder.toSubGraphSchema({ linkUrl: 'https://specs.apollo.dev/federation/v2.6', sortSchema: false });
