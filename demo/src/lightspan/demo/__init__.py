"""lightspan.demo: the whole loop on one machine (``lightspan demo``).

``world`` (knowledge base, tasks, reward), ``agent`` (GAP plan + tools + the policy through the openai
client, traced as rollouts), ``warmstart`` (tiny policy + short SFT), ``run`` (``DemoConfig`` and one
function per stage), ``cli`` (the ``demo`` command). See docs/serving.md, "The demo world".
"""

from .version import __version__ as __version__
