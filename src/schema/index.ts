import { builder } from './builder.js';
import './scalars.js';
import './enums.js';
import './errors.js';
import './generation.js';
import './extend-video.js';
import './cancel-generation.js';

export const schema = builder.toSchema({ sortSchema: false });
