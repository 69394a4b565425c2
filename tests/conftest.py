"""Settings for every test: no network for litellm's price table."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
