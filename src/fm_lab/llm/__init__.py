"""Model calls through litellm: fallbacks, retries, spans with usage; the offline provider."""

from fm_lab.llm.client import Completion, acomplete
from fm_lab.llm.offline import script

__all__ = ["Completion", "acomplete", "script"]
