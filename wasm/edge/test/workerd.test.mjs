// The edge presigner in Cloudflare's workerd (miniflare 4).
import { startWorkerd } from '../testing/harness.mjs';
import { presignerSuite } from '../testing/suite.mjs';

presignerSuite('workerd', startWorkerd);
