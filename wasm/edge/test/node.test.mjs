// The edge presigner in plain Node: worker.mjs imported and called with a Request and env.
import { startNode } from '../testing/harness.mjs';
import { presignerSuite } from '../testing/suite.mjs';

presignerSuite('node', startNode);
