from questline.agent.chat import ChatTokens
from questline.agent.debug import DriftReport, retokenize_check
from questline.agent.parsing import parse_action

__all__ = ["ChatTokens", "DriftReport", "parse_action", "retokenize_check"]
